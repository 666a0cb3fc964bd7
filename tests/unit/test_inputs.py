"""Bad input: each case gives a specific ClaimflowError with a message that says what to do."""

from __future__ import annotations

import pytest
from tests.conftest import PROMPT_ONLY, prompt_config

from claimflow import Verifier
from claimflow.errors import ClaimTooLongError, ContextLengthError, EmptyClaimError, InputError
from claimflow.llm.fake import FakeBackend


@pytest.fixture
def verifier() -> Verifier:
    return Verifier(PROMPT_ONLY, backends={"default": FakeBackend()})


@pytest.mark.parametrize("claim", ["", "   ", "\n\t"])
def test_empty_claim(verifier: Verifier, claim: str) -> None:
    with pytest.raises(EmptyClaimError, match="empty"):
        verifier.verify(claim, ["x"])


def test_claim_over_the_limit(verifier: Verifier) -> None:
    with pytest.raises(ClaimTooLongError, match="max_claim_chars"):
        verifier.verify("word " * 1000, ["x"])


def test_evidence_must_be_a_list_of_strings(verifier: Verifier) -> None:
    with pytest.raises(InputError, match="list of sentences"):
        verifier.verify("claim", "one string")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"evidence\[1\]"):
        verifier.verify("claim", ["ok", 3])  # type: ignore[list-item]


def test_blank_evidence_sentences_are_dropped(verifier: Verifier) -> None:
    result = verifier.verify("A claim.", ["  ", "A sentence."])
    assert result.evidence == ["A sentence."]


def test_too_many_evidence_sentences() -> None:
    config = prompt_config({"limits": {"max_evidence": 3}})
    with pytest.raises(InputError, match="max_evidence"):
        Verifier(config, backends={"default": FakeBackend()}).verify("c", ["a", "b", "c", "d"])


def test_a_long_evidence_list_is_warned_about_before_the_run(caplog: pytest.LogCaptureFixture) -> None:
    verifier = Verifier(prompt_config({"limits": {"warn_evidence": 3}}), backends={"default": FakeBackend()})
    with caplog.at_level("WARNING", logger="claimflow.verifier"):
        verifier.verify("c", ["a", "b", "c"])
        assert not caplog.records
        verifier.verify("c", ["a", "b", "c", "d"])
    (record,) = caplog.records
    assert "4 evidence sentences" in record.getMessage() and "a model call each" in record.getMessage()


def test_a_prompt_longer_than_the_context_is_a_clear_error() -> None:
    from claimflow.llm.base import Message

    class Tiny(FakeBackend):
        def score(self, requests):  # type: ignore[no-untyped-def]
            for r in requests:
                if sum(len(m.content) for m in r.messages if isinstance(m, Message)) > 200:
                    raise ContextLengthError("the prompt has 900 tokens, more than the context of 128")
            return super().score(requests)

    with pytest.raises(ContextLengthError, match="context"):
        Verifier(PROMPT_ONLY, backends={"default": Tiny()}).verify("long " * 100, ["x"])

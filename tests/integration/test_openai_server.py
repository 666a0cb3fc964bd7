"""The ``openai`` backend against a real llama.cpp OpenAI-compatible server (see ``conftest.llama_server``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import pytest
from pydantic import BaseModel

import claimflow
from claimflow.errors import ContextLengthError
from claimflow.llm.base import GenRequest, Message, ScoreRequest
from claimflow.llm.openai_backend import OpenAIBackend

pytestmark = pytest.mark.slow

CHECK_WORTHY = (
    Message(
        "user",
        'Task: Is the claim in this tweet worth conducting factual verification? You just need to answer "Yes" or '
        '"No".\nText: The Eiffel Tower is 330 metres tall and was the tallest structure in the world until 1930.',
    ),
)
VERACITY = (
    Message(
        "system",
        "You are a fact-checking assistant. Output your answer in exactly the following format:\n"
        "Claim Veracity: [label]\n\nAnswer with one word: true, false, or unverified.",
    ),
    Message(
        "user",
        "Claim: The Eiffel Tower is in Paris.\nSupport Justification: The evidence says the tower stands in Paris.\n"
        "Refute Justification: None of the evidence refutes the claim.\n\nDetermine the veracity of the claim.",
    ),
)
VERACITY_WORDS = (" true", " True", " false", " False", " unverified", " Unverified")


@pytest.fixture(scope="module")
def chat(llama_server: str) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend("smollm2", base_url=llama_server, timeout_s=60, max_retries=0)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def completions(llama_server: str) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend("smollm2", base_url=llama_server, api="completions", timeout_s=60, max_retries=0)
    yield backend
    backend.close()


def assert_logprobs(scores: dict[str, float]) -> None:
    assert all(math.isfinite(v) and v <= 0.0 for v in scores.values()), scores


def test_chat_generate_returns_text(chat: OpenAIBackend) -> None:
    (gen,) = chat.generate([GenRequest(CHECK_WORTHY, max_tokens=12)])
    assert gen.text.strip()
    assert gen.prompt_tokens > 0 and 0 < gen.completion_tokens <= 12
    assert gen.finish_reason in {"stop", "length"}


def test_chat_score_yes_no(chat: OpenAIBackend) -> None:
    (scores,) = chat.score([ScoreRequest(CHECK_WORTHY, ("Yes", "No"))])
    assert set(scores) == {"Yes", "No"}
    assert_logprobs(scores)


def test_chat_score_with_assistant_prefix(chat: OpenAIBackend) -> None:
    (scores,) = chat.score([ScoreRequest(VERACITY, VERACITY_WORDS, "Claim Veracity:")])
    assert scores, "no label word visible after (or instead of) the prefix"
    assert_logprobs(scores)


def test_completions_generate_and_score(completions: OpenAIBackend) -> None:
    (gen,) = completions.generate([GenRequest(CHECK_WORTHY, max_tokens=12)])
    assert gen.text.strip()
    assert "\n\nUser:" not in gen.text
    plain, prefixed = completions.score(
        [ScoreRequest(CHECK_WORTHY, ("Yes", "No")), ScoreRequest(VERACITY, VERACITY_WORDS, "Claim Veracity:")]
    )
    assert set(plain) == {"Yes", "No"}
    assert prefixed
    assert_logprobs(plain | prefixed)


class Stance(BaseModel):
    stance: Literal["SUPPORT", "REFUTE"]


def test_generate_structured(chat: OpenAIBackend) -> None:
    """JSON mode is grammar-constrained by llama.cpp, so even the 135M model returns valid JSON."""
    messages = (
        Message(
            "user",
            "Claim: The sky is blue.\nSentence: On a clear day the sky is blue.\n"
            'Does the sentence support or refute the claim? Answer in JSON: {"stance": "SUPPORT"} or '
            '{"stance": "REFUTE"}.',
        ),
    )
    result = chat.generate_structured(messages, Stance, max_retries=1)
    assert isinstance(result, Stance)
    assert result.stance in {"SUPPORT", "REFUTE"}


def test_prompt_over_the_context_is_a_context_length_error(chat: OpenAIBackend) -> None:
    long = (Message("user", "word " * 3000),)
    with pytest.raises(ContextLengthError, match="context"):
        chat.generate([GenRequest(long, max_tokens=4)])
    # the server keeps answering normal requests afterwards
    (gen,) = chat.generate([GenRequest(CHECK_WORTHY, max_tokens=2)])
    assert gen.completion_tokens > 0


def test_verifier_end_to_end(llama_server: str) -> None:
    config = claimflow.PipelineConfig.from_dict(
        {"backends": {"default": {"kind": "openai", "model": "smollm2", "base_url": llama_server}}}
    )
    with claimflow.Verifier(config) as verifier:
        result = verifier.verify(
            "The Eiffel Tower is in Paris.",
            ["The Eiffel Tower stands on the Champ de Mars in Paris.", "It was completed in 1889."],
            force=True,
        )
    assert result.status == "verified"
    assert result.veracity is not None and result.veracity.parse_error is None
    assert result.veracity.label in result.veracity.probabilities
    assert math.isclose(sum(result.veracity.probabilities.values()), 1.0, abs_tol=1e-6)
    assert set(result.stages_run) == {"check_worthiness", "evidence_stance", "justify", "veracity"}

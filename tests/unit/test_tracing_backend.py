"""TracingBackend: a wrapping backend that hands every call to the backend inside, records the calls
made while a node runs, and leaves the traces as the instance-patching shim it replaced wrote them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tests.conftest import FIXTURES, PROMPT_ONLY, keyword_scorer, prompt_config

from claimflow import Verifier
from claimflow.config import BackendConfig
from claimflow.errors import BackendError, ParseError
from claimflow.graphs.trace import NodeTrace
from claimflow.graphs.tracing_backend import TracingBackend, recording
from claimflow.llm.base import Backend, Generation, GenRequest, Message, ScoreRequest
from claimflow.llm.fake import FakeBackend
from claimflow.models.store import ModelStore

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]
GOLDEN = FIXTURES / "debug" / "trace_structured_run.json"
"""The trace of :func:`_structured_run`, written by the shim that patched backend instances."""

HI = (Message("user", "Hi"),)


class Answer(BaseModel):
    label: str


class Engine(FakeBackend):
    """A fake with an engine-specific method and a close flag, to see the wrapper pass them on."""

    kind = "engine"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("m1", structured_fn=lambda messages: '{"label": "SUPPORT"}', **kwargs)
        self.closed = False

    def encode(self, text: str) -> list[int]:
        return [len(text)]

    def close(self) -> None:
        self.closed = True


def _generate(req: GenRequest) -> str:
    return "Justification written from: " + req.messages[-1].content.split("Evidence:")[-1].strip()


def _structured_run() -> list[NodeTrace]:
    config = prompt_config({"evidence_stance": {"verbalizer": "structured"}})
    answers = iter(['{"label": "SUPPORT"}', "not json", '{"label": "REFUTE"}'])
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=_generate, structured_fn=lambda m: next(answers))
    return Verifier(config, backends={"default": fake}).run(CLAIM, EVIDENCE).trace


def _timeless(trace: list[NodeTrace]) -> list[dict[str, Any]]:
    """The trace without its timings, with the fields each entry set (as the golden file has it)."""
    out = []
    for entry in trace:
        data = entry.model_dump(exclude={"seconds", "started_at"})
        data["fields_set"] = sorted(entry.model_fields_set - {"seconds", "started_at"})
        data["calls"] = [
            {**c.model_dump(exclude={"seconds"}), "fields_set": sorted(c.model_fields_set)} for c in entry.calls
        ]
        out.append(data)
    return out


# --- delegation ------------------------------------------------------------------------------------


def test_every_backend_method_reaches_the_inner_backend() -> None:
    inner = Engine()
    traced = TracingBackend(inner)
    score = ScoreRequest(HI, ("Yes", "No"))
    assert traced.score([score]) == [{"Yes": 0.0, "No": 0.0}] and inner.score_requests == [score]
    assert traced.generate([GenRequest(HI)]) == [Generation("This is a scripted generation.", finish_reason="stop")]
    assert inner.generate_requests == [GenRequest(HI)]
    assert traced.generate_structured(HI, Answer) == Answer(label="SUPPORT")
    assert traced.provenance() == inner.provenance()
    traced.close()
    assert inner.closed


def test_identity_counters_and_engine_api_are_the_inner_backends() -> None:
    inner = Engine()
    traced = TracingBackend(inner)
    assert (traced.kind, traced.model_id, traced.label) == ("engine", "m1", "engine:m1")
    assert traced.stats is inner.stats and traced.capabilities is inner.capabilities
    traced.score([ScoreRequest(HI, ("Yes",))])
    assert traced.stats.calls == inner.stats.calls == 1
    assert traced.encode("abc") == [3]  # an engine's own method, not part of the protocol
    assert isinstance(traced, Engine) and isinstance(traced, Backend) and type(traced) is TracingBackend
    with pytest.raises(AttributeError):
        _ = traced.no_such_attribute


def test_wrap_is_idempotent_and_the_factory_wraps_what_it_makes() -> None:
    inner = Engine()
    traced = TracingBackend.wrap(inner)
    assert TracingBackend.wrap(traced) is traced
    assert type(traced) is TracingBackend and traced.inner is inner
    made = TracingBackend.factory(lambda config, store: inner)(BackendConfig(kind="fake"), ModelStore())
    assert type(made) is TracingBackend and made.inner is inner
    default = TracingBackend.factory()(BackendConfig(kind="fake"), ModelStore())
    assert type(default) is TracingBackend and isinstance(default, FakeBackend)


def test_the_verifier_traces_the_backends_it_is_given_and_creates() -> None:
    fake = FakeBackend(score_fn=keyword_scorer)
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    given = verifier.components.backend("default")
    assert type(given) is TracingBackend and isinstance(given, FakeBackend)
    again = Verifier(PROMPT_ONLY, backends=verifier.components.loaded_backends())  # as a replay passes them on
    assert again.components.backend("default") is given
    created = Verifier(PROMPT_ONLY, backend_factory=lambda config, store: fake).components.backend("default")
    assert type(created) is TracingBackend and created.inner is fake


# --- recording -------------------------------------------------------------------------------------


def test_calls_inside_a_recording_are_logged_and_outside_are_not() -> None:
    traced = TracingBackend(Engine())
    traced.score([ScoreRequest(HI, ("Yes",))])
    with recording() as log:
        traced.score([ScoreRequest(HI, ("Yes", "No"), "A:"), ScoreRequest(HI, ("No",))])
        traced.generate([GenRequest(HI, max_tokens=7, seed=None)])
        traced.generate_structured(HI, Answer)
    traced.generate([GenRequest(HI)])
    assert [(c.kind, c.batch) for c in log.calls] == [("score", 0), ("score", 0), ("generate", 1), ("structured", 2)]
    first, _, generated, structured = log.calls
    assert (first.backend, first.assistant_prefix, first.candidates) == ("engine:m1", "A:", ["Yes", "No"])
    assert first.logprobs == {"Yes": 0.0, "No": 0.0} and first.messages[0].content == "Hi"
    assert generated.output == "This is a scripted generation."
    assert generated.params == {"max_tokens": 7, "temperature": 0.0, "repetition_penalty": 1.0, "seed": None}
    assert structured.output == '{"label":"SUPPORT"}' and structured.params == {"response_model": "Answer"}
    assert all(c.error is None and c.seconds >= 0 for c in log.calls)


def test_a_failed_call_is_logged_with_its_error_and_raised() -> None:
    traced = TracingBackend(FakeBackend(responses=[], structured_fn=lambda messages: "not json"))
    with recording() as log:
        with pytest.raises(BackendError, match="exhausted"):
            traced.generate([GenRequest(HI), GenRequest(HI)])
        with pytest.raises(ParseError):
            traced.generate_structured(HI, Answer)
    failed, _, structured = log.calls
    assert [(c.kind, c.batch, c.seconds, c.output) for c in log.calls[:2]] == [("generate", 0, 0.0, None)] * 2
    assert failed.error == "BackendError: FakeBackend: scripted responses are exhausted"
    assert structured.batch == 1 and structured.output == "not json"
    assert structured.error is not None and structured.error.endswith("(raw output: 'not json')")


def test_a_traced_backend_inside_another_is_logged_once() -> None:
    inner = TracingBackend(Engine())
    outer = TracingBackend(inner)  # e.g. traced, then wrapped again by something that does not know
    with recording() as log:
        outer.score([ScoreRequest(HI, ("Yes",))])
    assert len(log.calls) == 1 and log.batches == 1


# --- the traces, as before -------------------------------------------------------------------------


def test_a_runs_trace_is_the_one_the_instance_patching_shim_wrote() -> None:
    assert _timeless(_structured_run()) == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_the_golden_trace_covers_every_kind_of_call_and_an_error() -> None:
    golden = json.loads(Path(GOLDEN).read_text(encoding="utf-8"))
    kinds = {c["kind"] for entry in golden for c in entry["calls"]}
    assert kinds == {"score", "generate", "structured"}
    assert any(c["error"] for entry in golden for c in entry["calls"])

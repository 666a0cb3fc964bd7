"""Trace and replay on the real default model (SmolLM2-135M, llama.cpp). Slow: loads a real model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimflow import PipelineConfig, Verifier
from claimflow.debug.history import load_run, report_for_stored
from claimflow.debug.replay import Edit, replay
from claimflow.debug.text import format_trace
from claimflow.graphs.trace_store import TraceStore
from claimflow.io import bundled_example

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Verifier, TraceStore]]:
    store = TraceStore(tmp_path_factory.mktemp("debug") / "runs.sqlite")
    # the prompted stance, so the trace holds the llama.cpp prompts of every stage that has them
    config = PipelineConfig.from_dict({"evidence_stance": {"predictor": "prompt"}})
    with Verifier(config, trace_store=store) as verifier:
        yield verifier.load(), store
    store.close()


def test_trace_then_replay_on_the_default_model(recorded: tuple[Verifier, TraceStore], tmp_path: Path) -> None:
    verifier, store = recorded
    example = bundled_example()
    result = verifier.verify(example["claim"], example["evidence"], force=True)
    assert result.run_id is not None and result.status == "verified"
    stored = load_run(store, result.run_id)
    trace = {t.node: t for t in stored.state["trace"]}

    stance_calls = trace["evidence_stance"].calls
    assert len(stance_calls) == 5
    for call, sentence in zip(stance_calls, example["evidence"], strict=True):
        assert sentence in call.messages[-1].content
        assert call.logprobs is not None and set(call.logprobs) == set(call.candidates)
        assert all(math.isfinite(v) and v < 0 for v in call.logprobs.values())
    assert result.justifications is not None
    outputs = [c.output for c in trace["justify"].calls]
    generated = [j.text for j in (result.justifications.support, result.justifications.refute) if j.generated]
    assert [o.strip() for o in outputs if o is not None] == generated
    text = format_trace(stored.info, stored.history)
    assert "raw log-probs:" in text and "Sentence to classify:" in text and "llamacpp:" in text

    backend = verifier.components.backend("default")
    backends = verifier.components.loaded_backends()
    calls = backend.stats.calls
    other = replay(store, result.run_id, prompts={"veracity": "veracity_justifications_rawfc@1"}, backends=backends)
    assert backend.stats.calls - calls == 1  # only the veracity prompt ran again
    assert other.after.justifications == result.justifications
    assert other.after.veracity is not None and other.after.veracity.label in {"true", "false", "half"}
    assert any(line.startswith("prompt veracity:") for line in other.diff)

    same = replay(store, result.run_id, from_node="justify", backends=backends)
    assert same.after.justifications == result.justifications  # greedy decoding is deterministic
    assert same.after.veracity is not None and result.veracity is not None
    for label, p in result.veracity.probabilities.items():
        assert same.after.veracity.probabilities[label] == pytest.approx(p, abs=1e-4)

    flipped = replay(store, result.run_id, edits=[Edit.parse("evidence_stances.0.label=NEUTRAL")], backends=backends)
    assert flipped.from_node == "justify" and flipped.after.evidence_stances[0].label == "NEUTRAL"
    page = tmp_path / "real.html"
    page.write_text(report_for_stored(load_run(store, flipped.run_id)), encoding="utf-8")
    assert page.read_text(encoding="utf-8").count('class="node-panel') == 4

"""The trace channel: each node's reads, rendered prompts, raw model outputs, scores and timing,
recorded on the fake backend without changing the result; streaming node updates."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import PROMPT_ONLY, keyword_scorer, prefer, prompt_config
from typer.testing import CliRunner

from claimflow import Verifier
from claimflow.cli.main import app
from claimflow.graphs.trace import NodeTrace
from claimflow.graphs.tracing_backend import TracingBackend
from claimflow.llm.base import ScoreRequest
from claimflow.llm.fake import FakeBackend
from claimflow.types import VerificationResult
from claimflow.verifier import NodeUpdate

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]
STAGES = ["check_worthiness", "evidence_stance", "justify", "veracity"]


def test_every_node_records_what_it_read_sent_got_and_how_long(fake: FakeBackend) -> None:
    run = Verifier(PROMPT_ONLY, backends={"default": fake}).run(CLAIM, EVIDENCE)
    trace = run.trace
    assert [t.node for t in trace] == STAGES
    by_node = {t.node: t for t in trace}

    assert by_node["check_worthiness"].reads == ["claim"]
    assert set(by_node["evidence_stance"].reads) == {"claim", "evidence"}
    assert set(by_node["justify"].reads) >= {"claim", "evidence_stances"}
    assert set(by_node["veracity"].reads) >= {"claim", "justifications"}
    assert by_node["evidence_stance"].writes == ["evidence_stances", "prompts"]

    # the recorded calls are exactly the requests the backend received, with its raw answers
    scored = [c for t in trace for c in t.calls if c.kind == "score"]
    assert len(scored) == len(fake.score_requests) == 5
    for call, request in zip(scored, fake.score_requests, strict=True):
        assert [(m.role, m.content) for m in call.messages] == [(m.role, m.content) for m in request.messages]
        assert call.candidates == list(request.candidates)
        assert call.logprobs == keyword_scorer(request)
        assert call.assistant_prefix == request.assistant_prefix
    stance_calls = by_node["evidence_stance"].calls
    assert [c.batch for c in stance_calls] == [0, 0, 0]  # one batched backend call
    assert all(
        f"Sentence to classify: {s}" in c.messages[-1].content for c, s in zip(stance_calls, EVIDENCE, strict=True)
    )

    generated = by_node["justify"].calls
    assert [c.kind for c in generated] == ["generate", "generate"]
    assert run.result.justifications is not None
    assert generated[0].output == run.result.justifications.support.text
    assert generated[0].params["max_tokens"] == 200

    veracity = by_node["veracity"].calls[0]
    assert veracity.assistant_prefix == "Claim Veracity:"
    assert by_node["veracity"].model_calls == 1 and by_node["evidence_stance"].forward_passes == 3
    for entry in trace:
        assert entry.seconds >= sum(c.seconds for c in entry.calls) - 1e-6
        assert entry.seconds == run.result.provenance.node_seconds[entry.node]


def test_the_result_is_unchanged_apart_from_an_optional_run_id(fake: FakeBackend) -> None:
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, EVIDENCE)
    data = json.loads(result.model_dump_json())
    assert data["run_id"] is None
    assert set(data) == {
        "claim", "evidence", "status", "check_worthiness", "evidence_stances", "justifications", "veracity",
        "stages_run", "provenance", "run_id",
    }  # fmt: skip
    assert "trace" not in data


def test_unparsed_text_answers_keep_their_raw_output_in_the_trace() -> None:
    answers = iter(["Yes", "SUPPORT", "I cannot tell.", "Support is strong", "x", "Claim Veracity: maybe"])
    fake = FakeBackend(logprobs=False, generate_fn=lambda r: next(answers))
    run = Verifier(PROMPT_ONLY, backends={"default": fake}).run(CLAIM, EVIDENCE)
    stance_calls = next(t for t in run.trace if t.node == "evidence_stance").calls
    assert [c.kind for c in stance_calls] == ["generate"] * 3
    assert stance_calls[1].output == "I cannot tell."
    assert run.result.evidence_stances[1].parse_error


def test_the_gate_closing_leaves_one_trace_entry() -> None:
    stop = prompt_config({"check_worthiness": {"gate": "stop"}})  # the default, annotate, runs on
    run = Verifier(stop, backends={"default": FakeBackend(score_fn=prefer("No"))}).run(CLAIM, EVIDENCE)
    assert [t.node for t in run.trace] == ["check_worthiness"]
    assert set(run.trace[0].reads) == {"claim", "force"}


def test_the_tracing_backend_is_transparent_outside_a_node() -> None:
    fake = FakeBackend(score_fn=prefer("Yes"))
    traced = TracingBackend.wrap(fake)
    assert TracingBackend.wrap(traced) is traced  # idempotent
    request = ScoreRequest(messages=(), candidates=("Yes", "No"))
    assert traced.score([request]) == [{"Yes": 0.0, "No": -4.0}]
    assert type(fake).score is FakeBackend.score and isinstance(traced, FakeBackend)
    assert len(fake.score_batches) == 1


def test_threads_sharing_a_backend_keep_their_own_calls() -> None:
    fake = FakeBackend(score_fn=keyword_scorer)
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    claims = [f"Claim number {i} is about vitamin D." for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda c: verifier.run(c, EVIDENCE), claims))
    for claim, run in zip(claims, runs, strict=True):
        calls = [c for t in run.trace for c in t.calls]
        assert len(calls) == 7
        assert all(claim in c.messages[-1].content for c in calls)


def test_stream_yields_each_node_as_it_completes_then_the_result(fake: FakeBackend) -> None:
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    events = list(verifier.stream(CLAIM, EVIDENCE))
    updates, final = events[:-1], events[-1]
    assert all(isinstance(e, NodeUpdate) for e in updates)
    assert [u.node for u in updates if isinstance(u, NodeUpdate)] == STAGES
    first = updates[0]
    assert isinstance(first, NodeUpdate) and first.update["gate"] == "pass" and first.seconds > 0
    assert isinstance(first.trace, NodeTrace) and first.trace.node == "check_worthiness"
    assert isinstance(final, VerificationResult) and final.status == "verified"
    plain = verifier.verify(CLAIM, EVIDENCE)
    assert final.veracity == plain.veracity and final.evidence_stances == plain.evidence_stances


def test_run_calls_on_update_in_node_order(fake: FakeBackend) -> None:
    seen: list[str] = []
    run = Verifier(PROMPT_ONLY, backends={"default": fake}).run(
        CLAIM, EVIDENCE, on_update=lambda u: seen.append(u.node)
    )
    assert seen == STAGES and run.result.status == "verified"


def test_cli_verify_stream_prints_nodes_in_order_and_keeps_json_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    evidence = tmp_path / "ev.txt"
    evidence.write_text("\n".join(EVIDENCE), encoding="utf-8")
    runner = CliRunner()
    args = ["verify", CLAIM, "-e", str(evidence), "-c", str(FIXTURES / "fake.yaml"), "--stream"]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.stdout.splitlines() if line.startswith("✓ ")]
    assert [line.split()[1] for line in lines] == STAGES
    assert shown.stdout.index("✓ veracity") < shown.stdout.index("Veracity:")
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["status"] == "verified"
    assert "✓ check_worthiness" in as_json.stderr

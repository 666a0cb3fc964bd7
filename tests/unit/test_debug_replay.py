"""Recorded runs (SQLite checkpoints + runs index), their history, and time travel on the fake backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import PROMPT_ONLY, keyword_scorer, prefer, prompt_config

from claimflow import Verifier
from claimflow.debug.history import load_run
from claimflow.debug.replay import Edit, apply_edits, diff_results, parse_prompt_override, replay
from claimflow.debug.text import format_trace
from claimflow.errors import BackendError, InputError
from claimflow.graphs.trace import TRACE_TYPES, ModelCall, NodeTrace
from claimflow.graphs.trace_store import TraceStore
from claimflow.llm.fake import FakeBackend

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]


def echo_fake() -> FakeBackend:
    """Justifications repeat their evidence, so editing stances visibly changes them."""
    return FakeBackend(
        score_fn=keyword_scorer,
        generate_fn=lambda req: "From: " + req.messages[-1].content.split("Evidence:")[-1].strip(),
    )


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with TraceStore(tmp_path / "runs.sqlite") as s:
        yield s


def record(store: TraceStore, fake: FakeBackend, evidence: list[str] = EVIDENCE, **kw: object) -> str:
    result = Verifier(PROMPT_ONLY, backends={"default": fake}, trace_store=store).verify(CLAIM, evidence, **kw)  # type: ignore[arg-type]
    assert result.run_id is not None
    return result.run_id


def test_a_recorded_run_has_an_index_row_and_a_checkpoint_per_step(store: TraceStore) -> None:
    run_id = record(store, echo_fake())
    info = store.get(run_id)
    assert info.status == "done" and info.claim == CLAIM and info.result is not None
    assert info.result.run_id == run_id and info.result.veracity is not None
    assert store.get(run_id[:5]).run_id == run_id and store.get("last").run_id == run_id
    stored = load_run(store, run_id)
    assert [s.next for s in stored.history] == [
        ("__start__",), ("check_worthiness",), ("evidence_stance",), ("justify",), ("veracity",), (),
    ]  # fmt: skip
    assert stored.state["veracity"] == info.result.veracity
    assert [t.node for t in stored.state["trace"]] == ["check_worthiness", "evidence_stance", "justify", "veracity"]


def test_runs_are_listed_newest_first_and_ids_resolve_strictly(store: TraceStore) -> None:
    ids = [record(store, echo_fake()) for _ in range(3)]
    assert [r.run_id for r in store.runs()] == ids[::-1]
    assert len(store.runs(limit=2)) == 2
    with pytest.raises(InputError, match="no run"):
        store.get("zzzz")
    with pytest.raises(InputError, match="ambiguous"):
        store.get("")
    with pytest.raises(InputError, match="already taken"):
        Verifier(PROMPT_ONLY, backends={"default": echo_fake()}, trace_store=store).verify(
            CLAIM, EVIDENCE, run_id=ids[0]
        )


def test_a_run_that_fails_midway_is_kept_with_its_partial_history(store: TraceStore) -> None:
    fake = FakeBackend(score_fn=keyword_scorer, responses=[])  # justify's generation fails
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake}, trace_store=store)
    with pytest.raises(BackendError):
        verifier.verify(CLAIM, EVIDENCE, run_id="crashed")
    info = store.get("crashed")
    assert info.status == "error" and "exhausted" in (info.error or "") and info.result is None
    stored = load_run(store, "crashed")
    assert [t.node for t in stored.state["trace"]] == ["check_worthiness", "evidence_stance"]
    text = format_trace(info, stored.history)
    assert "error: BackendError" in text and "→ next: justify" in text


def test_a_database_written_before_the_trace_channel_moved_still_reads_back(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints name each class by module; up to 0.1.0 the trace classes lived in
    ``claimflow.graphs.debug.trace``, and such runs still revive, trace and replay."""
    for cls in TRACE_TYPES:
        monkeypatch.setattr(cls, "__module__", "claimflow.graphs.debug.trace")
    run_id = record(store, echo_fake())
    monkeypatch.undo()
    blobs = [row[0] for row in store.conn.execute("SELECT checkpoint FROM checkpoints")]
    assert any(b"claimflow.graphs.debug.trace" in blob for blob in blobs)
    stored = load_run(store, run_id)
    assert [type(t) for t in stored.state["trace"]] == [NodeTrace] * 4
    assert isinstance(stored.state["trace"][0].calls[0], ModelCall)
    assert "raw log-probs:" in format_trace(stored.info, stored.history)
    again = replay(store, run_id, from_node="veracity", backends={"default": echo_fake()})
    assert again.diff == ["no change in the result"]
    assert [t.inherited_from for t in again.state["trace"]] == [run_id] * 3 + [None]


def test_trace_text_shows_history_inputs_prompts_raw_outputs_and_scores(store: TraceStore) -> None:
    run_id = record(store, echo_fake())
    stored = load_run(store, run_id)
    text = format_trace(stored.info, stored.history, max_calls=-1)
    assert "state history (6 checkpoints" in text
    assert "evidence_stance wrote evidence_stances" in text
    assert f"Sentence to classify: {EVIDENCE[2]}" in text  # a rendered prompt
    assert "raw log-probs: 'SUPPORT'=-3.000" in text  # the raw model output
    assert "[assistant prefix] 'Claim Veracity:'" in text
    assert "veracity = REFUTED p=" in text  # the verbalized scores
    only = format_trace(stored.info, stored.history, node="justify")
    assert "node 1/1: justify" in only and "raw output: 'From:" in only


def test_replay_with_an_edited_stance_reruns_only_the_later_nodes(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    before_calls = len(fake.score_requests), len(fake.generate_requests)
    outcome = replay(store, run_id, edits=[Edit.parse("evidence_stances.2.label=REFUTE")], backends={"default": fake})
    assert outcome.from_node == "justify"  # the first node that read evidence_stances
    assert len(fake.score_requests) == before_calls[0] + 1  # veracity only
    assert len(fake.generate_requests) == before_calls[1] + 2  # both justifications
    after = outcome.after
    assert after.run_id == outcome.run_id != run_id
    assert after.justifications is not None and EVIDENCE[2] in after.justifications.refute.text
    assert after.evidence_stances[2].label == "REFUTE"
    assert "evidence[2]: NEUTRAL (0.84) -> REFUTE (0.08)" in outcome.diff
    assert "refute justification:" in outcome.diff
    trace = outcome.state["trace"]
    assert [(t.node, t.inherited_from) for t in trace] == [
        ("check_worthiness", run_id), ("evidence_stance", run_id), ("justify", None), ("veracity", None),
    ]  # fmt: skip
    info = store.get(outcome.run_id)
    assert (info.parent_run, info.from_node, info.changes) == (
        run_id, "justify", ["set evidence_stances.2.label=REFUTE"],
    )  # fmt: skip
    assert store.get(run_id).result is not None  # the original is untouched
    history = load_run(store, outcome.run_id).history
    assert history[0].metadata["source"] == "update" and history[0].next == ("justify",)


def test_replay_with_another_prompt_version_starts_at_that_stage(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    key, ref = parse_prompt_override("veracity=veracity_justifications_rawfc@1")
    outcome = replay(store, run_id, prompts={key: ref}, backends={"default": fake})
    assert outcome.from_node == "veracity"
    assert outcome.after.provenance.prompts["veracity"].startswith("veracity_justifications_rawfc@1#")
    assert outcome.after.veracity is not None and set(outcome.after.veracity.probabilities) == {"true", "false", "half"}
    assert any(line.startswith("prompt veracity: veracity_justifications@1#") for line in outcome.diff)
    assert "veracity: veracity_justifications_rawfc@1" not in store.get(run_id).config_yaml
    assert "veracity_justifications_rawfc@1" in store.get(outcome.run_id).config_yaml


def test_a_plain_rerun_reports_no_change_and_replay_of_a_replay_works(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    again = replay(store, run_id, from_node="veracity", backends={"default": fake})
    assert again.diff == ["no change in the result"]
    deeper = replay(store, again.run_id, from_node="check_worthiness", backends={"default": fake})
    assert deeper.diff == ["no change in the result"]
    assert all(t.inherited_from is None for t in deeper.state["trace"])


def test_editing_the_input_reruns_from_the_first_reader(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    outcome = replay(store, run_id, edits=[Edit.parse("evidence.1=Trials show it does not work at all.")],
                     backends={"default": fake})  # fmt: skip
    assert outcome.from_node == "evidence_stance"
    assert outcome.after.evidence_stances[1].label == "REFUTE"
    assert "evidence: 3 -> 3 sentences (edited)" in outcome.diff


def test_replay_can_open_a_closed_gate(store: TraceStore) -> None:
    fake = FakeBackend(score_fn=prefer("No"))
    stop = prompt_config({"check_worthiness": {"gate": "stop"}})  # the default, annotate, runs on
    run_id = Verifier(stop, backends={"default": fake}, trace_store=store).verify(CLAIM, EVIDENCE).run_id
    assert run_id is not None
    assert store.get(run_id).result.status == "not_check_worthy"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="never reached justify"):
        replay(store, run_id, from_node="justify", backends={"default": fake})
    outcome = replay(
        store, run_id, from_node="evidence_stance", edits=[Edit.parse("gate=forced")], backends={"default": fake}
    )
    assert outcome.after.status == "verified"
    assert "status: not_check_worthy -> verified" in outcome.diff


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("stages_run=[]", "bookkeeping"),
        ("nonsense=1", "not a state key"),
        ("evidence_stances.9.label=REFUTE", "out of range"),
        ("evidence_stances.0.nope=1", "not valid"),
        ("evidence_stances.0.label=7", "not valid"),
        ("claim.x=1", "cannot index"),
        ("no equals sign", "PATH=VALUE"),
    ],
)
def test_bad_edits_are_clear_errors(store: TraceStore, edit: str, message: str) -> None:
    run_id = record(store, echo_fake())
    values = load_run(store, run_id).state
    with pytest.raises(InputError, match=message):
        apply_edits(values, [Edit.parse(edit)])


def test_bad_replays_are_clear_errors(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    with pytest.raises(InputError, match="say where to start"):
        replay(store, run_id, backends={"default": fake})
    with pytest.raises(InputError, match="runs before --from veracity"):
        replay(store, run_id, from_node="veracity", prompts={"justify_support": "justification_support@1"},
               backends={"default": fake})  # fmt: skip
    with pytest.raises(InputError, match="not a stage"):
        replay(store, run_id, from_node="nope", backends={"default": fake})
    with pytest.raises(InputError, match="unknown stage"):
        parse_prompt_override("verdict=x@1")
    with pytest.raises(Exception, match="no_such_template"):
        replay(store, run_id, prompts={"veracity": "no_such_template@1"}, backends={"default": fake})


def test_diff_of_identical_results_is_no_change(store: TraceStore) -> None:
    run_id = record(store, echo_fake())
    result = store.get(run_id).result
    assert result is not None
    assert diff_results(result, result) == ["no change in the result"]


def test_a_replay_cannot_start_before_its_own_fork(store: TraceStore) -> None:
    fake = echo_fake()
    run_id = record(store, fake)
    fork = replay(store, run_id, from_node="veracity", backends={"default": fake})
    with pytest.raises(InputError, match=f"replay its parent {run_id}"):
        replay(store, fork.run_id, from_node="justify", backends={"default": fake})


def test_a_prompt_override_switches_a_trained_stage_to_the_prompted_predictor() -> None:
    from claimflow import PipelineConfig
    from claimflow.debug.replay import with_prompts

    config = PipelineConfig.from_dict({"veracity": {"predictor": "encoder"}})
    replayed = with_prompts(config, {"veracity": "veracity_justifications_rawfc@1"})
    assert replayed.veracity.predictor == "prompt"
    assert replayed.veracity.template == "veracity_justifications_rawfc@1"
    assert replayed.check_worthiness == config.check_worthiness

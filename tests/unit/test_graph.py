"""The graph on the fake backend: each node's inputs and outputs, the gate, batching, provenance."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, PROMPT_ONLY, keyword_scorer, prefer, prompt_config

from claimflow import Verifier
from claimflow.errors import GraphBuildError
from claimflow.graphs.nodes.justify import NO_EVIDENCE_TEXT
from claimflow.llm.fake import FakeBackend

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]


def test_each_node_sees_the_right_inputs_and_writes_its_outputs(fake: FakeBackend) -> None:
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, EVIDENCE)

    # check_worthiness: one scored prompt holding the claim, label words as candidates
    cw_request = fake.score_batches[0][0]
    assert CLAIM in cw_request.messages[-1].content
    assert set(cw_request.candidates) >= {"Yes", "No"}
    assert result.check_worthiness is not None and result.check_worthiness.label == "Yes"

    # evidence_stance: all sentences in one batched call, one prompt per sentence
    stance_batch = fake.score_batches[1]
    assert len(stance_batch) == len(EVIDENCE)
    for request, sentence in zip(stance_batch, EVIDENCE, strict=True):
        assert f"Sentence to classify: {sentence}" in request.messages[-1].content
        assert CLAIM in request.messages[-1].content
    assert [s.label for s in result.evidence_stances] == ["REFUTE", "SUPPORT", "NEUTRAL"]
    for stance in result.evidence_stances:
        assert math.isclose(sum(stance.probabilities.values()), 1.0)

    # justify: supporting justification from the SUPPORT sentence only, refuting from the REFUTE one
    support_prompt, refute_prompt = (r.messages[-1].content for r in fake.generate_requests)
    assert EVIDENCE[1] in support_prompt and EVIDENCE[0] not in support_prompt
    assert EVIDENCE[0] in refute_prompt and EVIDENCE[1] not in refute_prompt
    assert EVIDENCE[2] not in support_prompt + refute_prompt
    assert result.justifications is not None
    assert result.justifications.support.evidence_indices == [1]
    assert result.justifications.refute.evidence_indices == [0]

    # veracity: reads both justifications, scored after the 'Claim Veracity:' prefix
    veracity_request = fake.score_batches[2][0]
    assert result.justifications.support.text in veracity_request.messages[-1].content
    assert result.justifications.refute.text in veracity_request.messages[-1].content
    assert veracity_request.assistant_prefix == "Claim Veracity:"
    assert result.veracity is not None and result.veracity.label == "REFUTED"
    assert set(result.veracity.probabilities) == {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}

    assert result.status == "verified"
    assert result.stages_run == ["check_worthiness", "evidence_stance", "justify", "veracity"]


def test_provenance_records_prompts_timings_and_calls(fake: FakeBackend) -> None:
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, EVIDENCE)
    prov = result.provenance
    assert prov.prompts["check_worthiness"].startswith("checkworthiness_short@1#")
    assert prov.prompts["evidence_stance"].startswith("evidence_stance_3way@1#")
    assert set(prov.node_seconds) == {"check_worthiness", "evidence_stance", "justify", "veracity"}
    assert prov.model_calls == {"check_worthiness": 1, "evidence_stance": 3, "justify": 2, "veracity": 1}
    assert prov.models["veracity"].backend == "fake"


def test_gate_stops_a_claim_that_is_not_check_worthy() -> None:
    fake = FakeBackend(score_fn=prefer("No"))
    stop = prompt_config({"check_worthiness": {"gate": "stop"}})  # triage; the default annotates (test_gate_policy)
    result = Verifier(stop, backends={"default": fake}).verify(CLAIM, EVIDENCE)
    assert result.status == "not_check_worthy"
    assert result.stages_run == ["check_worthiness"]
    assert result.veracity is None and not result.evidence_stances
    assert len(fake.score_requests) == 1 and not fake.generate_requests


def test_force_runs_every_stage_past_the_gate() -> None:
    fake = FakeBackend(score_fn=prefer("No"))
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, EVIDENCE, force=True)
    assert result.check_worthiness is not None and result.check_worthiness.label == "No"
    assert result.stages_run == ["check_worthiness", "evidence_stance", "justify", "veracity"]
    assert result.status == "verified"


def test_no_evidence_skips_the_evidence_stages_and_says_so(fake: FakeBackend) -> None:
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, [])
    assert result.status == "no_evidence"
    assert result.stages_run == ["check_worthiness"]
    assert result.veracity is None


def test_a_side_without_evidence_is_stated_not_generated() -> None:
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "generated")
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, ["Trials show it works well."])
    assert result.justifications is not None
    assert result.justifications.refute.text == NO_EVIDENCE_TEXT["refute"]
    assert result.justifications.refute.generated is False
    assert result.justifications.support.generated is True
    assert len(fake.generate_requests) == 1


def test_500_evidence_sentences_go_in_bounded_batches() -> None:
    fake = FakeBackend(score_fn=keyword_scorer)
    config = prompt_config({"evidence_stance": {"batch_size": 32}})
    evidence = [f"Sentence number {i} says the claim is right." for i in range(500)]
    result = Verifier(config, backends={"default": fake}).verify(CLAIM, evidence)
    stance_batches = fake.score_batches[1:-1]
    assert sum(len(b) for b in stance_batches) == 500
    assert max(len(b) for b in stance_batches) == 32
    assert len(result.evidence_stances) == 500
    # the justification reads at most max_sentences_per_side sentences
    assert result.justifications is not None
    assert len(result.justifications.support.evidence_indices) == 8


def test_stage_subset_runs_only_those_stages(fake: FakeBackend) -> None:
    config = PROMPT_ONLY.with_stages(("check_worthiness",))
    result = Verifier(config, backends={"default": fake}).verify(CLAIM, EVIDENCE)
    assert result.stages_run == ["check_worthiness"]
    assert result.status == "partial"


def test_justify_without_stance_fails_at_build_time() -> None:
    config = PROMPT_ONLY.with_stages(("check_worthiness", "justify"))
    with pytest.raises(GraphBuildError, match="needs 'evidence_stance'"):
        Verifier(config, backends={"default": FakeBackend()})


def test_veracity_from_justifications_needs_justify() -> None:
    config = PROMPT_ONLY.with_stages(("evidence_stance", "veracity"))
    with pytest.raises(GraphBuildError, match="support_justification"):
        Verifier(config, backends={"default": FakeBackend()})


def test_unknown_template_fails_at_build_time_naming_the_key() -> None:
    config = prompt_config({"veracity": {"template": "no_such_template@1"}})
    with pytest.raises(GraphBuildError, match=r"veracity\.template"):
        Verifier(config, backends={"default": FakeBackend()})


def test_backend_without_logprobs_falls_back_to_text_and_records_parse_failures() -> None:
    answers = iter(["Yes", "SUPPORT", "I cannot tell.", "Support is strong", "x", "Claim Veracity: maybe"])
    fake = FakeBackend(logprobs=False, generate_fn=lambda r: next(answers))
    result = Verifier(PROMPT_ONLY, backends={"default": fake}).verify(CLAIM, EVIDENCE[:3])
    stances = result.evidence_stances
    assert [s.label for s in stances] == ["SUPPORT", None, "SUPPORT"]
    assert stances[1].parse_error and stances[1].raw_output == "I cannot tell."
    assert result.veracity is not None and result.veracity.label is None
    assert result.veracity.raw_output == "Claim Veracity: maybe"


def test_mermaid_snapshot_of_the_default_graph() -> None:
    mermaid = Verifier(PROMPT_ONLY, backends={"default": FakeBackend()}).graph.get_graph().draw_mermaid()
    assert mermaid == (FIXTURES / "graph_default.mmd").read_text(encoding="utf-8")


def test_drawing_the_graph_loads_no_model(tmp_path: Path) -> None:
    def refuse(*_args: object) -> FakeBackend:
        raise AssertionError("a model was loaded")

    verifier = Verifier(backend_factory=refuse)
    assert "evidence_stance" in verifier.graph.get_graph().draw_mermaid()

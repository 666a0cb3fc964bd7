"""The stance summary an encoder reads: its wording, the same text in training and in ``verify``, and the
build-time check that the stance stage writes it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import keyword_scorer

from claimflow import PipelineConfig, Verifier
from claimflow.errors import GraphBuildError
from claimflow.graphs import register_predictor, unregister_predictor
from claimflow.llm.fake import FakeBackend
from claimflow.predictors.stance_summary import describe_stances, stance_summary_of_row
from claimflow.types import EvidenceStance, LabelScores

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def stance(label: str, support: float, refute: float, relevance: float | None, used: bool = True) -> EvidenceStance:
    probabilities = {"SUPPORT": support, "REFUTE": refute, "NEUTRAL": round(1 - support - refute, 6)}
    return EvidenceStance(index=0, text="", label=label, probabilities=probabilities, relevance=relevance, used=used)


def test_each_side_gets_a_strength_word_and_a_count() -> None:
    stances = [
        stance("SUPPORT", 0.9, 0.05, 0.95),  # support strength 0.855: strong
        stance("REFUTE", 0.1, 0.6, 0.5),  # refute strength 0.30: weak
        stance("NEUTRAL", 0.2, 0.1, 0.2),
    ]
    assert describe_stances(stances) == (
        "support: strong, 1 of 3 sentences. refute: weak, 1 of 3 sentences. most relevant sentence: support."
    )
    # relevance weighs the strength: the same refuting sentence at relevance 1.0 is moderate
    assert "refute: moderate" in describe_stances([stance("REFUTE", 0.1, 0.6, 1.0)])
    assert "most relevant sentence: refute." in describe_stances([stance("REFUTE", 0.1, 0.6, 1.0)])


def test_unused_sentences_are_left_out_and_no_evidence_is_said() -> None:
    kept = stance("NEUTRAL", 0.1, 0.1, 0.9)
    left_out = stance("REFUTE", 0.0, 0.99, 0.99, used=False)
    assert describe_stances([kept, left_out]) == (
        "support: none, 0 of 1 sentences. refute: none, 0 of 1 sentences. most relevant sentence: neutral."
    )
    assert describe_stances([left_out]) == describe_stances([]) == "no evidence."


def test_labels_other_than_the_defaults_are_read() -> None:
    custom = EvidenceStance(index=0, text="", label="ENTAILS", probabilities={"ENTAILS": 0.8, "CONTRADICTS": 0.1})
    assert describe_stances([custom], "ENTAILS", "CONTRADICTS").startswith("support: strong, 1 of 1 sentences.")


def test_a_distilled_row_reads_as_the_same_stances_do_in_verify() -> None:
    stances = [stance("SUPPORT", 0.7, 0.2, 0.8), stance("REFUTE", 0.15, 0.8, 0.6)]
    row = {  # as claimflow.finetune.distill writes it
        "stances": [s.label for s in stances],
        "stance_probabilities": [s.probabilities for s in stances],
        "relevance": [s.relevance for s in stances],
    }
    assert stance_summary_of_row(row) == describe_stances(stances)
    no_relevance = {**row, "relevance": [None, None]}
    assert stance_summary_of_row(no_relevance) == describe_stances(
        [s.model_copy(update={"relevance": None}) for s in stances]
    )
    assert stance_summary_of_row({"support_justification": "x"}) is None


class Recorder:
    """A veracity predictor that records the rows it is given."""

    labels = ("SUPPORTED", "REFUTED")

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []

    def predict(self, inputs: Sequence[Mapping[str, Any]]) -> list[LabelScores]:
        self.seen.extend(inputs)
        return [LabelScores(label="SUPPORTED", probabilities={"SUPPORTED": 0.6, "REFUTED": 0.4}) for _ in inputs]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    built = Recorder()
    register_predictor(
        "veracity", "summary_reader", lambda ctx: built, inputs=("claim", "stance_summary"), labels=Recorder.labels
    )
    try:
        yield built
    finally:
        unregister_predictor("veracity", "summary_reader")


def test_verify_hands_the_veracity_predictor_the_summary_of_the_used_stances(recorder: Recorder) -> None:
    config = PipelineConfig.from_dict({"veracity": {"predictor": "summary_reader"}})
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "A justification.")
    with Verifier(config, backends={"default": fake}) as verifier:
        result = verifier.verify("Masks reduce spread.", ["A study found masks cut spread.", "Masks do not work."])
    (row,) = recorder.seen
    assert set(row) == {"claim", "stance_summary"}
    assert row["stance_summary"] == describe_stances(result.evidence_stances)
    assert row["stance_summary"].startswith("support: ")


def test_reading_the_summary_without_the_stance_stage_is_a_build_error(recorder: Recorder) -> None:
    config = PipelineConfig.from_dict({"stages": ["veracity"], "veracity": {"predictor": "summary_reader"}})
    with pytest.raises(GraphBuildError, match="stance_summary comes from stage 'evidence_stance'"):
        Verifier(config, backends={"default": FakeBackend()})
    assert recorder.seen == []


def test_training_rows_get_the_summary_of_their_distilled_stances(tmp_path: Path) -> None:
    from claimflow.finetune.classifier import ClassifierData, load_rows

    record = {
        "id": "covidfact-train-0",
        "support_justification": "s",
        "refute_justification": "r",
        "stances": ["REFUTE"],
        "stance_probabilities": [{"SUPPORT": 0.05, "REFUTE": 0.9, "NEUTRAL": 0.05}],
        "relevance": [0.9],
    }
    distilled = tmp_path / "train.jsonl"
    distilled.write_text(json.dumps(record) + "\n", encoding="utf-8")
    data = ClassifierData(dataset="covidfact", data_dir=FIXTURE_DATA)
    ((item_id, fields, _),) = load_rows(data, "train", distilled, None, 0)
    assert item_id == "covidfact-train-0"
    assert fields["stance_summary"] == stance_summary_of_row(record)
    assert fields["stance_summary"].startswith("support: none, 0 of 1 sentences. refute: strong, 1 of 1")

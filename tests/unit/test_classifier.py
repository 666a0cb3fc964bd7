"""PromptClassifier modes on the fake backend: logit, text, structured, legacy rule, calibration, CoT."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from claimflow.errors import CapabilityError
from claimflow.llm.base import ScoreRequest
from claimflow.llm.fake import FakeBackend
from claimflow.predictors import PromptClassifier
from claimflow.prompts import PromptTemplate, TemplateRegistry

REGISTRY = TemplateRegistry(include_env=False)


def biased_scorer(request: ScoreRequest) -> dict[str, float]:
    """Says Yes with p=.8 whatever the input, a bit more when the claim mentions numbers."""
    text = request.messages[-1].content
    p_yes = 0.9 if any(ch.isdigit() for ch in text.split("Text:")[-1]) else 0.8
    return {c: math.log(p_yes if c == "Yes" else (1 - p_yes) if c == "No" else 1e-9) for c in request.candidates}


def test_contextual_calibration_removes_the_prompt_bias() -> None:
    classifier = PromptClassifier(REGISTRY.get("checkworthiness_short@1"), FakeBackend(score_fn=biased_scorer))
    plain = classifier.predict([{"claim": "I like rain."}, {"claim": "Taxes rose 12%."}])
    assert [p.label for p in plain] == ["Yes", "Yes"]
    content_free = classifier.calibrate()
    assert content_free["Yes"] == pytest.approx(0.8, abs=1e-6)
    calibrated = classifier.predict([{"claim": "I like rain."}, {"claim": "Taxes rose 12%."}])
    assert calibrated[0].probabilities["Yes"] == pytest.approx(0.5, abs=1e-6)
    assert calibrated[1].label == "Yes" and calibrated[1].probabilities["Yes"] > 0.6


def test_structured_mode_validates_and_records_failures() -> None:
    answers = iter(['{"label": "Yes"}', '{"label": "Maybe"}'])
    backend = FakeBackend(structured_fn=lambda messages: next(answers))
    classifier = PromptClassifier(REGISTRY.get("checkworthiness_long@1"), backend, verbalizer="structured")
    good, bad = classifier.predict([{"claim": "a"}, {"claim": "b"}])
    assert good.label == "Yes" and good.probabilities == {"Yes": 1.0, "No": 0.0}
    assert bad.label is None and bad.raw_output == '{"label": "Maybe"}' and bad.parse_error


def test_structured_mode_needs_a_capable_backend() -> None:
    with pytest.raises(CapabilityError, match="structured"):
        PromptClassifier(REGISTRY.get("checkworthiness_long@1"), FakeBackend(), verbalizer="structured")


def test_es_rule_mode() -> None:
    backend = FakeBackend(responses=["Yes.", "No."])
    classifier = PromptClassifier(REGISTRY.get("checkworthiness_long@1"), backend, verbalizer="es_rule")
    assert [p.label for p in classifier.predict([{"claim": "a"}, {"claim": "b"}])] == ["Yes", "No"]


def test_reasoning_first_templates_generate_and_parse_after_the_marker(tmp_path: Path) -> None:
    path = tmp_path / "cot.v1.yaml"
    path.write_text(
        """id: cot
version: 1
task: veracity
kind: classify
inputs: [claim]
user: "Think step by step, then answer 'Claim Veracity: [label]'. Claim: {{ claim }}"
reasoning_first: true
answer_marker: "Claim Veracity:"
label_words: {"true": [" true"], "false": [" false"]}
source: test
""",
        encoding="utf-8",
    )
    template = PromptTemplate.from_file(path)
    backend = FakeBackend(responses=["It is false that... but overall.\nClaim Veracity: true", "I refuse."])
    classifier = PromptClassifier(template, backend)
    assert classifier.mode == "text"
    first, second = classifier.predict([{"claim": "a"}, {"claim": "b"}])
    assert first.label == "true"  # the word 'false' in the reasoning is ignored
    assert "step" not in (first.raw_output or "") and first.raw_output.startswith("It is false")
    assert second.label is None and second.parse_error
    assert backend.generate_requests[0].max_tokens >= 384


def test_water_fill_gives_a_short_fields_share_to_the_long_ones() -> None:
    from claimflow.predictors.encoder import water_fill

    assert water_fill([5, 100, 100], 65) == [5, 30, 30]
    assert water_fill([10, 10], 100) == [10, 10]
    assert water_fill([0, 50], 20) == [0, 20]
    assert water_fill([7, 7, 7], 10) == [4, 3, 3]
    assert sum(water_fill([3, 90, 40, 12], 77)) == 77

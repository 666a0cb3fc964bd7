from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import PipelineConfig
from claimflow.llm.base import ScoreRequest
from claimflow.llm.fake import FakeBackend

FIXTURES = Path(__file__).parent / "fixtures"
PROMPTED = {
    "check_worthiness": {"predictor": "prompt"},
    "evidence_stance": {"predictor": "prompt"},
    "veracity": {"predictor": "prompt"},
}
PROMPT_ONLY = PipelineConfig.from_dict(PROMPTED)
"""Every stage prompted, so a fake backend stands in for all of them (the default config runs
trained predictors for check-worthiness, evidence stance and veracity on their real, small models)."""


def prompt_config(data: dict[str, Any]) -> PipelineConfig:
    """``data`` as a config whose check-worthiness and veracity stages are prompted."""
    merged = dict(data)
    for stage, settings in PROMPTED.items():
        merged[stage] = {**settings, **data.get(stage, {})}
    return PipelineConfig.from_dict(merged)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never touch the user's cache; real-model tests share one session cache."""
    shared = os.environ.get("CLAIMFLOW_TEST_CACHE")
    cache = Path(shared) if shared else tmp_path_factory.getbasetemp() / "claimflow-cache"
    monkeypatch.setenv("CLAIMFLOW_CACHE_DIR", str(cache))


def prefer(label_word: str, strength: float = 4.0):
    """A score function that makes ``label_word`` the clear favourite."""

    def score(request: ScoreRequest) -> dict[str, float]:
        return {c: (0.0 if c == label_word else -strength) for c in request.candidates}

    return score


def keyword_scorer(request: ScoreRequest) -> dict[str, float]:
    """Check-worthy: Yes. Stance: sentences with 'no'/'not' refute, 'sunlight' is neutral, others support.
    Veracity: false when the refuting justification was generated."""
    text = request.messages[-1].content
    if "Sentence to classify:" in text:
        sentence = text.split("Sentence to classify:")[1].lower()
        if "sunlight" in sentence:
            best = "NEUTRAL"
        elif " no " in sentence or " not " in sentence:
            best = "REFUTE"
        else:
            best = "SUPPORT"
    elif "Claim Veracity" in (request.assistant_prefix or ""):
        best = " false"
    else:
        best = "Yes"
    return {c: (0.0 if c == best else -3.0) for c in request.candidates}


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(
        score_fn=keyword_scorer,
        generate_fn=lambda req: (
            "Justification written from: " + req.messages[-1].content.split("Evidence:")[-1].strip()
        ),
    )

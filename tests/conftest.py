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


# --- honest skips --------------------------------------------------------------------------------
#
# A test marked ``data`` needs the real datasets (``$CLAIMFLOW_DATA``, default ``../shared/data``) and
# skips without them. With CLAIMFLOW_REQUIRE_DATA=1 (``.ci/run`` sets it when it finds the data) such a
# skip is a failure instead; either way the end of the run says loudly how many were skipped and why.

REQUIRE_DATA = "CLAIMFLOW_REQUIRE_DATA"
_DATA_SKIPS: list[tuple[str, str]] = []


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or item.get_closest_marker("data") is None or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    _DATA_SKIPS.append((item.nodeid, reason))
    if os.environ.get(REQUIRE_DATA) == "1":
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_DATA}=1, but this real-data test was skipped: {reason}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _DATA_SKIPS:
        return
    reasons = sorted({reason for _, reason in _DATA_SKIPS})
    verb = "FAILED (required)" if os.environ.get(REQUIRE_DATA) == "1" else "SKIPPED"
    terminalreporter.write_sep("!", f"{len(_DATA_SKIPS)} real-data tests {verb}", red=True, bold=True)
    for reason in reasons:
        terminalreporter.write_line(f"  because: {reason}")
    terminalreporter.write_line(
        f"  set CLAIMFLOW_DATA to the data folder; {REQUIRE_DATA}=1 turns these skips into failures"
    )

"""Cross-claim batching on the real shipped encoders: the scores ``verify_many`` reads from its
batched passes equal the one-claim path's (float tolerance), every verdict equal. Justify runs on a
scripted backend (the generative stage is not batched across claims). Slow: loads real models."""

from __future__ import annotations

import math

import pytest

from claimflow import PipelineConfig, Verifier
from claimflow.llm.base import GenRequest
from claimflow.llm.fake import FakeBackend
from claimflow.types import LabelScores, VerificationResult

pytestmark = pytest.mark.slow

CLAIMS = [
    ("Rapid clinical deterioration of severe covid-19 may be associated with stroke.", 2),
    ("The unemployment rate fell to 3.5 percent last year.", 1),
    ("Masks reduce the spread of respiratory viruses in crowded indoor spaces.", 3),
    ("Vitamin D cures COVID-19.", 2),
    ("The Eiffel Tower is 330 metres tall.", 0),
    ("Hydroxychloroquine does not reduce mortality in hospitalised patients.", 3),
    ("Children are less likely to develop severe disease from SARS-CoV-2.", 2),
    ("Remdesivir shortens recovery time in adults hospitalised with covid-19.", 1),
]
EVIDENCE = [
    "A randomised trial of 1,000 patients found no reduction in mortality.",
    "Neurologic events such as stroke can follow a rapid clinical deterioration.",
    "Surgical masks cut the emission of respiratory droplets in laboratory tests.",
    "The study was funded by a national research council.",
    "Recovery took 11 days on average with the drug and 15 days with placebo.",
]


def _justify(request: GenRequest) -> str:
    return "From: " + request.messages[-1].content[-80:]


def close(a: LabelScores | None, b: LabelScores | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    assert a.label == b.label
    assert a.probabilities.keys() == b.probabilities.keys()
    for key, p in a.probabilities.items():
        assert math.isclose(p, b.probabilities[key], abs_tol=1e-5), (key, p, b.probabilities[key])


def same(batched: VerificationResult, alone: VerificationResult) -> None:
    assert batched.status == alone.status and batched.stages_run == alone.stages_run
    close(batched.check_worthiness, alone.check_worthiness)
    assert len(batched.evidence_stances) == len(alone.evidence_stances)
    for x, y in zip(batched.evidence_stances, alone.evidence_stances, strict=True):
        close(x, y)
        assert x.used == y.used and math.isclose(x.relevance or 0.0, y.relevance or 0.0, abs_tol=1e-5)
    assert batched.justifications == alone.justifications
    close(batched.veracity, alone.veracity)


@pytest.mark.parametrize("force", [False, True])
def test_verify_many_on_the_shipped_encoders_equals_verify(force: bool) -> None:
    items = [(claim, [EVIDENCE[(i + k) % len(EVIDENCE)] for k in range(n)]) for i, (claim, n) in enumerate(CLAIMS)]
    backend = FakeBackend(generate_fn=_justify)
    with Verifier(PipelineConfig(), backends={"default": backend}) as verifier:
        alone = [verifier.verify(claim, evidence, force=force) for claim, evidence in items]
        batched = verifier.verify_many(items, force=force)
        stance = verifier.components.stance_model()
        assert not stance.prefetched  # the chunk's cache is dropped once the chunk is done
    for got, want in zip(batched, alone, strict=True):
        assert isinstance(got, VerificationResult)
        same(got, want)
    statuses = {r.status for r in alone}
    assert "verified" in statuses or "not_check_worthy" in statuses
    if force:
        assert sum(r.provenance.forward_passes.get("evidence_stance", 0) for r in batched) == 0  # prefetched
        assert [r.provenance.model_calls.get("evidence_stance") for r in batched] == [
            r.provenance.model_calls.get("evidence_stance") for r in alone
        ]

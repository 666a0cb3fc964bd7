"""Veracity from the evidence stances alone, with no training (veracity ``predictor: aggregate``).

Each used sentence ``i`` gives ``s_i = P_i(SUPPORT) * r_i`` and ``f_i = P_i(REFUTE) * r_i`` (``r_i``:
its P(relevant), 1 without a relevance head). ``combine`` turns them into the claim's evidence
strengths ``s`` and ``f``: ``max`` (the strongest sentence of each side) or ``noisy_or``
(``1 - prod(1 - s_i)``: several moderate sentences add up). The verdict distribution treats the two
sides as independent events::

    SUPPORTED       = s (1 - f) + s f * s / (s + f)
    REFUTED         = f (1 - s) + s f * f / (s + f)
    NOT_ENOUGH_INFO = (1 - s)(1 - f)

so a claim whose evidence is all NEUTRAL or irrelevant comes out NOT_ENOUGH_INFO, and when both
sides are strong the stronger one wins. ``nei_threshold`` (optional) calls NOT_ENOUGH_INFO only
when ``max(s, f)`` is below it, whatever the distribution's argmax; ``two_way`` drops that label
(for data without it, e.g. COVID-Fact). No gold label is read: only the stance model's outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from claimflow.errors import InputError
from claimflow.llm.base import BackendStats
from claimflow.types import EvidenceStance, LabelScores, ModelProvenance

__all__ = ["AGGREGATE_LABELS", "Combine", "StanceAggregator", "side_strengths", "verdict_distribution"]

Combine = Literal["max", "noisy_or"]
AGGREGATE_LABELS = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")


def side_strengths(
    stances: Sequence[EvidenceStance], support_label: str, refute_label: str, combine: Combine = "max"
) -> tuple[float, float]:
    """``(s, f)``: how strongly the used sentences support and refute the claim, each in [0, 1]."""
    sides: list[list[float]] = [[], []]
    for stance in stances:
        if not stance.used:
            continue
        weight = 1.0 if stance.relevance is None else stance.relevance
        sides[0].append(stance.probabilities.get(support_label, 0.0) * weight)
        sides[1].append(stance.probabilities.get(refute_label, 0.0) * weight)
    out = []
    for values in sides:
        if not values:
            out.append(0.0)
        elif combine == "max":
            out.append(max(values))
        else:
            out.append(1.0 - math.prod(1.0 - v for v in values))
    return out[0], out[1]


def verdict_distribution(s: float, f: float, *, two_way: bool = False) -> dict[str, float]:
    """The verdict distribution of side strengths ``s`` (support) and ``f`` (refute)."""
    both = s * f
    split = s / (s + f) if s + f > 0 else 0.5
    supported = s * (1 - f) + both * split
    refuted = f * (1 - s) + both * (1 - split)
    if two_way:
        total = supported + refuted
        if total <= 0:
            return {"SUPPORTED": 0.5, "REFUTED": 0.5}
        return {"SUPPORTED": supported / total, "REFUTED": refuted / total}
    return {"SUPPORTED": supported, "REFUTED": refuted, "NOT_ENOUGH_INFO": (1 - s) * (1 - f)}


class StanceAggregator:
    """The ``predict(inputs) -> list[LabelScores]`` of a classify stage, over ``inputs["evidence_stances"]``."""

    inputs = ("evidence_stances",)

    def __init__(
        self,
        *,
        support_label: str = "SUPPORT",
        refute_label: str = "REFUTE",
        combine: Combine = "max",
        nei_threshold: float | None = None,
        two_way: bool = False,
    ) -> None:
        self.support_label, self.refute_label = support_label, refute_label
        self.combine: Combine = combine
        self.nei_threshold = nei_threshold
        self.two_way = two_way
        self.labels = AGGREGATE_LABELS[:2] if two_way else AGGREGATE_LABELS
        self.stats = BackendStats()  # no model: nothing to count

    def score(self, stances: Sequence[EvidenceStance]) -> LabelScores:
        s, f = side_strengths(stances, self.support_label, self.refute_label, self.combine)
        distribution = verdict_distribution(s, f, two_way=self.two_way)
        label = max(distribution, key=distribution.__getitem__)
        if not self.two_way and self.nei_threshold is not None:
            label = "NOT_ENOUGH_INFO" if max(s, f) < self.nei_threshold else ("SUPPORTED" if s >= f else "REFUTED")
        return LabelScores(label=label, probabilities=distribution)

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        out = []
        for row in inputs:
            stances = row.get("evidence_stances")
            if stances is None:
                raise InputError("the aggregate veracity predictor reads 'evidence_stances' (run evidence_stance)")
            out.append(self.score([s if isinstance(s, EvidenceStance) else EvidenceStance(**s) for s in stances]))
        return out

    def close(self) -> None:
        """Nothing to release."""

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend="stance-aggregate", model=f"aggregate:{self.combine}", source="claimflow")

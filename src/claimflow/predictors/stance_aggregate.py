"""Veracity from the evidence stances: with no training (``predictor: aggregate``) or a small fitted classifier.

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

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from claimflow.errors import InputError, ModelError
from claimflow.llm.base import BackendStats
from claimflow.types import EvidenceStance, LabelScores, ModelProvenance

__all__ = [
    "AGGREGATE_LABELS",
    "FEATURE_NAMES",
    "Combine",
    "StanceAggregator",
    "StanceFeatureClassifier",
    "scored_stances",
    "side_strengths",
    "stance_features",
    "verdict_distribution",
]

Combine = Literal["max", "noisy_or"]
NEI = "NOT_ENOUGH_INFO"
AGGREGATE_LABELS = ("SUPPORTED", "REFUTED", NEI)


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


FEATURE_NAMES = (
    "support_max", "refute_max", "support_noisy_or", "refute_noisy_or", "support_mean", "refute_mean",
    "support_max_unweighted", "refute_max_unweighted", "relevance_max", "relevance_mean", "log_sentences",
)  # fmt: skip


def stance_features(stances: Sequence[EvidenceStance], support_label: str, refute_label: str) -> list[float]:
    """The claim-level summary of its used stances that the stance-features classifier reads
    (:data:`FEATURE_NAMES`; relevance-weighted unless named unweighted)."""
    used = [s for s in stances if s.used]
    if not used:
        return [0.0] * len(FEATURE_NAMES)
    rel = [1.0 if s.relevance is None else s.relevance for s in used]
    sup = [s.probabilities.get(support_label, 0.0) for s in used]
    ref = [s.probabilities.get(refute_label, 0.0) for s in used]
    ws, wf = [a * r for a, r in zip(sup, rel, strict=True)], [a * r for a, r in zip(ref, rel, strict=True)]
    return [
        max(ws), max(wf),
        1.0 - math.prod(1.0 - v for v in ws), 1.0 - math.prod(1.0 - v for v in wf),
        sum(ws) / len(ws), sum(wf) / len(wf),
        max(sup), max(ref),
        max(rel), sum(rel) / len(rel),
        math.log1p(len(used)),
    ]  # fmt: skip


def scored_stances(
    probabilities: Sequence[Mapping[str, float]], relevance: Sequence[float] | None = None
) -> list[EvidenceStance]:
    """Stances rebuilt from stored stance-model outputs (P(label) and P(relevant) per sentence), e.g.
    the scored claims a stance-features classifier is fitted on."""
    return [
        EvidenceStance(
            index=i, text="", label=None, probabilities=dict(p), relevance=None if relevance is None else relevance[i]
        )
        for i, p in enumerate(probabilities)
    ]


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
        return [self.score(_stances(row)) for row in inputs]

    def close(self) -> None:
        """Nothing to release."""

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend="stance-aggregate", model=f"aggregate:{self.combine}", source="claimflow")


class StanceFeatureClassifier:
    """A multinomial logistic regression over :func:`stance_features` (veracity ``predictor:
    stance_features``), fitted by :mod:`claimflow.finetune.stance_features` on train splits; the
    artifact is one JSON file (``model.json``: labels, feature names, scaler, coefficients) and its
    ``provenance.json``."""

    inputs = ("evidence_stances",)

    def __init__(
        self,
        artifact: Path,
        *,
        support_label: str = "SUPPORT",
        refute_label: str = "REFUTE",
        min_relevance: float | None = None,
    ) -> None:
        try:
            model = json.loads((artifact / "model.json").read_text(encoding="utf-8"))
            self.labels = tuple(model["labels"])
            self.mean, self.scale = list(model["mean"]), list(model["scale"])
            self.coef, self.intercept = [list(r) for r in model["coef"]], list(model["intercept"])
            names = tuple(model["features"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{artifact} is not a stance-features artifact: {exc}") from exc
        if names != FEATURE_NAMES or len(self.coef) != len(self.labels):
            raise ModelError(f"{artifact}: features {list(names)} do not match this claimflow's {list(FEATURE_NAMES)}")
        self.artifact = artifact
        self.support_label, self.refute_label = support_label, refute_label
        self.min_relevance = min_relevance
        self.stats = BackendStats()

    def score(self, stances: Sequence[EvidenceStance]) -> LabelScores:
        x = stance_features(stances, self.support_label, self.refute_label)
        z = [(v - m) / s for v, m, s in zip(x, self.mean, self.scale, strict=True)]
        logits = [
            b + sum(w * v for w, v in zip(row, z, strict=True))
            for row, b in zip(self.coef, self.intercept, strict=True)
        ]
        top = max(logits)
        exp = [math.exp(v - top) for v in logits]
        distribution = {label: e / sum(exp) for label, e in zip(self.labels, exp, strict=True)}
        distribution = self._no_relevant_evidence(stances, distribution)
        return LabelScores(label=max(distribution, key=distribution.__getitem__), probabilities=distribution)

    def _no_relevant_evidence(self, stances: Sequence[EvidenceStance], p: dict[str, float]) -> dict[str, float]:
        """With ``min_relevance`` set and no sentence that relevant: NOT_ENOUGH_INFO gets 1 - the best
        relevance r (> 1/2), SUPPORTED and REFUTED share r in the fitted model's proportion (so a two-way
        reading of the distribution is unchanged). Stances without relevance scores (a stance predictor
        that gives none) leave the fitted model alone."""
        relevance = [s.relevance for s in stances if s.relevance is not None]
        if self.min_relevance is None or NEI not in p or not relevance or max(relevance) >= self.min_relevance:
            return p
        r = max(relevance)
        sides = {label: v for label, v in p.items() if label != NEI}
        total = sum(sides.values())
        out = {label: r * (v / total if total > 0 else 1 / len(sides)) for label, v in sides.items()}
        return {**out, NEI: 1.0 - r}

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        return [self.score(_stances(row)) for row in inputs]

    def close(self) -> None:
        """Nothing to release."""

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend="stance-features-logreg", model=self.artifact.name, source=str(self.artifact))


def _stances(row: Mapping[str, Any]) -> list[EvidenceStance]:
    stances = row.get("evidence_stances")
    if stances is None:
        raise InputError("this veracity predictor reads 'evidence_stances' (run evidence_stance)")
    return [s if isinstance(s, EvidenceStance) else EvidenceStance(**s) for s in stances]

"""The evidence stances as a short text an encoder can read: the ELM's ``stance_summary`` input.

One sentence per side, in words a sentence encoder tokenizes well (a strength bucket rather than a
bare number), computed the same way in training (from a distilled row's stored stance outputs) and
in ``verify`` (from the ``evidence_stance`` stage's output)::

    support: strong, 2 of 3 sentences. refute: weak, 1 of 3 sentences. most relevant sentence: support.

Strength is the side's strongest relevance-weighted probability (:func:`side_strengths`, ``max``):
``strong`` from 0.7, ``moderate`` from 0.4, ``weak`` from 0.15, else ``none``. A sentence counts for
the side it is labelled with (its argmax). No gold label is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from claimflow.predictors.stance_aggregate import scored_stances, side_strengths
from claimflow.types import EvidenceStance

__all__ = ["STRENGTHS", "describe_stances", "stance_summary_of_row"]

STRENGTHS = ((0.7, "strong"), (0.4, "moderate"), (0.15, "weak"))
"""Lower bounds of the strength words, strongest first; below the last: ``none``."""


def _strength(value: float) -> str:
    return next((word for bound, word in STRENGTHS if value >= bound), "none")


def _label(stance: EvidenceStance) -> str | None:
    if stance.label is not None:
        return stance.label
    if not stance.probabilities:
        return None
    return max(stance.probabilities, key=lambda k: stance.probabilities[k])


def describe_stances(
    stances: Sequence[EvidenceStance], support_label: str = "SUPPORT", refute_label: str = "REFUTE"
) -> str:
    """The used stances in one line (see the module docstring); ``no evidence.`` when none is used."""
    used = [s for s in stances if s.used]
    if not used:
        return "no evidence."
    support, refute = side_strengths(used, support_label, refute_label)
    labels = [_label(s) for s in used]
    n = len(used)
    parts = []
    for side, label, strength in (("support", support_label, support), ("refute", refute_label, refute)):
        count = sum(1 for x in labels if x == label)
        parts.append(f"{side}: {_strength(strength)}, {count} of {n} sentences.")
    top = max(used, key=lambda s: -1.0 if s.relevance is None else s.relevance)
    top_label = _label(top)
    side_of = {support_label: "support", refute_label: "refute"}
    parts.append(f"most relevant sentence: {side_of.get(top_label or '', 'neutral')}.")
    return " ".join(parts)


def stance_summary_of_row(row: Mapping[str, Any]) -> str | None:
    """:func:`describe_stances` of a distilled row (``stances``, ``stance_probabilities``, ``relevance``
    as :mod:`claimflow.finetune.distill` writes them); ``None`` when the row has no stance outputs."""
    probabilities = row.get("stance_probabilities")
    if not isinstance(probabilities, list):
        return None
    relevance = row.get("relevance")
    if not isinstance(relevance, list) or any(r is None for r in relevance) or len(relevance) != len(probabilities):
        relevance = None
    stances = scored_stances(probabilities, relevance)
    labels = row.get("stances")
    if isinstance(labels, list) and len(labels) == len(stances):
        stances = [s.model_copy(update={"label": label}) for s, label in zip(stances, labels, strict=True)]
    return describe_stances(stances)

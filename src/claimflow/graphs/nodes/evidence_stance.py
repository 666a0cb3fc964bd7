"""evidence_stance: one label distribution per evidence sentence, all sentences in batched calls.

With the trained multi-task model (``predictor: encoder``, or any predictor that is a
:class:`~claimflow.graphs.predictor_registry.StanceScorer`) each sentence also gets P(relevant),
from the same encoder pass; ``max_evidence: K`` then marks all but the K most relevant sentences
``used=False``, so the later stages read at most K (the result keeps every sentence's scores); a
prompted stance has no relevance score, and there ``max_evidence`` keeps the first K sentences.
"""

from __future__ import annotations

from typing import Any

from claimflow.graphs.components import Components
from claimflow.graphs.predictor_registry import StanceScorer
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.types import EvidenceStance, LabelScores


def most_relevant(relevance: list[float], k: int | None) -> set[int]:
    """Indices of the ``k`` highest relevance scores (earlier sentences first on ties); all when ``k`` is None."""
    if k is None or k >= len(relevance):
        return set(range(len(relevance)))
    ranked = sorted(range(len(relevance)), key=lambda i: (-relevance[i], i))
    return set(ranked[:k])


def make_evidence_stance(components: Components) -> NodeFn:
    cfg = components.config.evidence_stance

    def evidence_stance(state: VerificationState) -> dict[str, Any]:
        claim, evidence = state["claim"], state.get("evidence", [])
        relevance: list[float] | None = None  # None: no relevance head, or a prompted stance
        scores: list[LabelScores]
        predictor = components.classifier("evidence_stance")
        if isinstance(predictor, StanceScorer):  # the multi-task model: stance and relevance in one pass
            scores, relevance = predictor.stance_and_relevance(claim, evidence)
        else:
            scores = predictor.predict([{"claim": claim, "sentence": s} for s in evidence])
        # without relevance scores (a prompted stance) max_evidence keeps the first K sentences
        kept = most_relevant(relevance or [0.0] * len(evidence), cfg.max_evidence)
        stances = [
            EvidenceStance(
                index=i,
                text=text,
                **score.model_dump(),
                relevance=relevance[i] if relevance is not None else None,
                used=i in kept,
            )
            for i, (text, score) in enumerate(zip(evidence, scores, strict=True))
        ]
        return {"evidence_stances": stances, "prompts": {"evidence_stance": components.stage_ref("evidence_stance")}}

    return evidence_stance

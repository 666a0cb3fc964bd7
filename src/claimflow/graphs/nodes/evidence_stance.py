"""evidence_stance: one label distribution per evidence sentence, all sentences in batched calls."""

from __future__ import annotations

from typing import Any

from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.types import EvidenceStance


def make_evidence_stance(components: Components) -> NodeFn:
    def evidence_stance(state: VerificationState) -> dict[str, Any]:
        claim, evidence = state["claim"], state.get("evidence", [])
        scores = components.classifier("evidence_stance").predict([{"claim": claim, "sentence": s} for s in evidence])
        stances = [
            EvidenceStance(index=i, text=text, **score.model_dump())
            for i, (text, score) in enumerate(zip(evidence, scores, strict=True))
        ]
        return {
            "evidence_stances": stances,
            "prompts": {"evidence_stance": components.templates["evidence_stance"].ref},
        }

    return evidence_stance

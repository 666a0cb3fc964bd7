"""justify: one supporting and one refuting justification, each from the sentences of its side."""

from __future__ import annotations

from typing import Any, Literal

from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.types import EvidenceStance, Justification, Justifications

NO_EVIDENCE_TEXT = {
    "support": "None of the evidence sentences supports the claim.",
    "refute": "None of the evidence sentences refutes the claim.",
}


def select_side(stances: list[EvidenceStance], label: str, limit: int) -> list[EvidenceStance]:
    """The used sentences labelled ``label``, at most ``limit``: highest P(label) x P(relevant) first
    (P(label) alone when the stance model gives no relevance)."""
    side = [s for s in stances if s.label == label and s.used]
    side.sort(
        key=lambda s: s.probabilities.get(label, 0.0) * (1.0 if s.relevance is None else s.relevance), reverse=True
    )
    return side[:limit]


def make_justify(components: Components) -> NodeFn:
    cfg = components.config.justify
    labels = components.config.evidence_stance

    def justify(state: VerificationState) -> dict[str, Any]:
        stances = state.get("evidence_stances", [])
        sides: dict[Literal["support", "refute"], list[EvidenceStance]] = {
            "support": select_side(stances, labels.support_label, cfg.max_sentences_per_side),
            "refute": select_side(stances, labels.refute_label, cfg.max_sentences_per_side),
        }
        out: dict[str, Justification] = {}
        for side, chosen in sides.items():
            indices = sorted(s.index for s in chosen)
            if not chosen:
                out[side] = Justification(side=side, text=NO_EVIDENCE_TEXT[side], generated=False)
                continue
            evidence = [stances[i].text for i in indices]
            (text,) = components.generator(side).generate([{"claim": state["claim"], "evidence": evidence}])
            out[side] = Justification(side=side, text=text, evidence_indices=indices, generated=True)
        return {
            "justifications": Justifications(support=out["support"], refute=out["refute"]),
            "prompts": {
                "justify_support": components.templates["justify_support"].ref,
                "justify_refute": components.templates["justify_refute"].ref,
            },
        }

    return justify

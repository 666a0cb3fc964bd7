"""check_worthiness: is the claim worth checking? Sets the gate that may end the run."""

from __future__ import annotations

from typing import Any

from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState


def make_check_worthiness(components: Components) -> NodeFn:
    cfg = components.config.check_worthiness

    def check_worthiness(state: VerificationState) -> dict[str, Any]:
        (scores,) = components.classifier("check_worthiness").predict([{"claim": state["claim"]}])
        if cfg.threshold is None:
            worthy = scores.label == cfg.positive_label
        else:
            worthy = scores.probabilities.get(cfg.positive_label, 0.0) >= cfg.threshold
        gate = "pass" if worthy else ("forced" if state.get("force") else "not_check_worthy")
        return {
            "check_worthiness": scores,
            "gate": gate,
            "prompts": {"check_worthiness": components.stage_ref("check_worthiness")},
        }

    return check_worthiness

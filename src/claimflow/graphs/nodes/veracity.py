"""veracity: a label distribution over the claim's truth, read from the justifications."""

from __future__ import annotations

from typing import Any

from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState


def make_veracity(components: Components) -> NodeFn:
    fields = components.stage_inputs("veracity")

    def veracity(state: VerificationState) -> dict[str, Any]:
        available: dict[str, Any] = {
            "claim": state["claim"],
            "evidence": list(state.get("evidence", [])),
        }
        if "justifications" in state:
            available["support_justification"] = state["justifications"].support.text
            available["refute_justification"] = state["justifications"].refute.text
        inputs = {name: available[name] for name in fields}
        (scores,) = components.classifier("veracity").predict([inputs])
        return {"veracity": scores, "prompts": {"veracity": components.stage_ref("veracity")}}

    return veracity

"""veracity: a label distribution over the claim's truth, read from the justifications (or the stances)."""

from __future__ import annotations

from typing import Any

from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.predictors.stance_summary import describe_stances


def make_veracity(components: Components) -> NodeFn:
    fields = components.stage_inputs("veracity")
    labels = (components.config.evidence_stance.support_label, components.config.evidence_stance.refute_label)

    def veracity(state: VerificationState) -> dict[str, Any]:
        evidence = list(state.get("evidence", []))
        if "evidence_stances" in state:  # the sentences evidence_stance kept (max_evidence), most relevant first
            used = [s for s in state["evidence_stances"] if s.used]
            used.sort(key=lambda s: -(1.0 if s.relevance is None else s.relevance))
            evidence = [s.text for s in used]
        available: dict[str, Any] = {"claim": state["claim"], "evidence": evidence}
        if "evidence_stances" in state:
            available["evidence_stances"] = [s for s in state["evidence_stances"] if s.used]
            if "stance_summary" in fields:  # only for a predictor that reads it
                available["stance_summary"] = describe_stances(available["evidence_stances"], *labels)
        if "justifications" in state:
            available["support_justification"] = state["justifications"].support.text
            available["refute_justification"] = state["justifications"].refute.text
        inputs = {name: available[name] for name in fields}
        (scores,) = components.classifier("veracity").predict([inputs])
        return {"veracity": scores, "prompts": {"veracity": components.stage_ref("veracity")}}

    return veracity

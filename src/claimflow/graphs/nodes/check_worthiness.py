"""check_worthiness: is the claim worth checking? Sets the gate that may end the run.

The gate is one of

- ``pass``: the claim is check-worthy; the run goes on;
- ``forced``: it is not, but the run was asked to go on whatever the gate says (``force``);
- ``annotated``: it is not, and ``check_worthiness.gate`` is ``annotate`` (the default): the run goes
  on and the result reports the judgement next to the verdict;
- ``not_check_worthy``: it is not, and the run ends here (status ``not_check_worthy``): with
  ``gate: stop`` (triage), or when nothing would come after anyway (no evidence, or no later stage
  configured), so a lone check-worthiness run still says why it ended.
"""

from __future__ import annotations

from typing import Any

from claimflow.config import CheckWorthinessConfig
from claimflow.graphs.components import Components
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.types import LabelScores


def make_check_worthiness(components: Components) -> NodeFn:
    cfg = components.config.check_worthiness
    later_stages = [s for s in components.config.stages if s != "check_worthiness"]

    def check_worthiness(state: VerificationState) -> dict[str, Any]:
        (scores,) = components.classifier("check_worthiness").predict([{"claim": state["claim"]}])
        worthy = is_check_worthy(scores, cfg)
        # evidence is read only when it decides the gate (a replay that edits it re-runs from the first reader)
        if worthy:
            gate = "pass"
        elif state.get("force"):
            gate = "forced"
        elif cfg.gate == "annotate" and later_stages and state.get("evidence"):
            gate = "annotated"
        else:
            gate = "not_check_worthy"
        return {
            "check_worthiness": scores,
            "gate": gate,
            "prompts": {"check_worthiness": components.stage_ref("check_worthiness")},
        }

    return check_worthiness


def is_check_worthy(scores: LabelScores, cfg: CheckWorthinessConfig) -> bool:
    """The gate's judgement of ``scores``: P(positive) at or above ``cfg.threshold``, else the predicted label."""
    if cfg.threshold is None:
        return scores.label == cfg.positive_label
    return scores.probabilities.get(cfg.positive_label, 0.0) >= cfg.threshold

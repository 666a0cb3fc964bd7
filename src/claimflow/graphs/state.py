"""The state that flows through the verification graph."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypedDict

from claimflow.graphs.trace import NodeTrace
from claimflow.types import EvidenceStance, Justifications, LabelScores


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class VerificationState(TypedDict, total=False):
    # inputs
    claim: str
    evidence: list[str]
    force: bool
    # stage outputs
    check_worthiness: LabelScores
    gate: Literal["pass", "forced", "annotated", "not_check_worthy"]
    evidence_stances: list[EvidenceStance]
    justifications: Justifications
    veracity: LabelScores
    # bookkeeping, merged across nodes
    stages_run: Annotated[list[str], operator.add]
    prompts: Annotated[dict[str, str], merge_dicts]
    node_seconds: Annotated[dict[str, float], merge_dicts]
    model_calls: Annotated[dict[str, int], merge_dicts]
    forward_passes: Annotated[dict[str, int], merge_dicts]
    # what each node read, sent to its models and got back (graphs/trace.py)
    trace: Annotated[list[NodeTrace], operator.add]


NodeFn = Callable[[VerificationState], dict[str, Any]]

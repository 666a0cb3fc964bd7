"""The HTTP API's request and response bodies: pydantic models, so ``/docs`` and ``/openapi.json``
document them. Results are the package's own :class:`~claimflow.types.VerificationResult`; the
stored trace entries are :class:`~claimflow.graphs.trace.NodeTrace`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from claimflow.config import GatePolicy, StageName
from claimflow.graphs.trace import NodeTrace
from claimflow.types import StrictModel, VerificationResult

EXAMPLE_CLAIM = "The Eiffel Tower is in Berlin."
EXAMPLE_EVIDENCE = [
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
    "Berlin's tallest structure is the Fernsehturm, a television tower.",
]


class VerifyRequest(StrictModel):
    """One claim to verify against its evidence."""

    claim: str = Field(description="the sentence to verify", examples=[EXAMPLE_CLAIM])
    evidence: list[str] = Field(
        default_factory=list,
        description="evidence sentences, one per item (empty: only check-worthiness can run)",
        examples=[EXAMPLE_EVIDENCE],
    )
    force: bool = Field(False, description="run every stage whatever the check-worthiness gate says")
    stages: list[StageName] | None = Field(
        None,
        description='run only these stages (in pipeline order), e.g. ["check_worthiness"] for triage; '
        "default: the served config's stages",
    )
    gate: GatePolicy | None = Field(
        None,
        description="check_worthiness.gate for this request: annotate (run on and report the judgement) or "
        "stop (end at a claim judged not check-worthy); default: the served config's",
    )


class BatchRequest(StrictModel):
    """Several claims, verified in order on one model slot. Every item is checked before any runs: an
    invalid item fails the whole request (422, naming the item), nothing is verified."""

    items: list[VerifyRequest] = Field(description="the claims, each with its own evidence and options")


class BatchResponse(StrictModel):
    results: list[VerificationResult] = Field(description="one result per item, in the order given")


class ErrorBody(StrictModel):
    """Every error the API answers: 4xx for what the request got wrong, 5xx for the server's models."""

    error: str = Field(description="the error's class, e.g. InputError, ConfigError, BackendError")
    message: str = Field(description="what went wrong and what to do about it")


class NodeEvent(StrictModel):
    """``event: node`` of ``POST /v1/verify:stream``: one node finished."""

    node: str
    seconds: float
    run_id: str | None = None
    summary: str = Field(description="one line, as `claimflow verify --stream` prints it")
    update: dict[str, Any] = Field(description="what the node wrote to the graph state (its trace left out)")


class StartEvent(StrictModel):
    """``event: start`` of ``POST /v1/verify:stream``: the run began."""

    run_id: str | None = Field(description="the run's id when the server records runs")
    stages: list[str]


class Health(StrictModel):
    status: Literal["ok"] = "ok"
    version: str
    stages: list[str] = Field(description="the served pipeline's stages")
    gate: GatePolicy
    recording: bool = Field(description="whether runs are recorded (GET /v1/runs lists them)")
    runs_db: str | None = None
    evals_store: str | None = None
    concurrency: int = Field(description="verifications that run at once (each slot holds its own models)")
    queue: int = Field(description="requests that may wait for a slot; beyond it the server answers 503")
    in_flight: int = Field(description="requests running or waiting now")


class RunSummary(StrictModel):
    """One recorded run (the runs index)."""

    run_id: str
    created: float
    finished: float | None
    status: str = Field(description="running, done or error")
    claim: str
    parent_run: str | None = Field(None, description="the run this one replays")
    from_node: str | None = None
    changes: list[str] = Field(default_factory=list)
    result_status: str | None = Field(None, description="the result's status (verified, not_check_worthy, ...)")
    verdict: str | None = None
    confidence: float | None = None
    error: str | None = None


class RunDetail(StrictModel):
    """A recorded run: its index row, result, config and per-node trace."""

    run: RunSummary
    result: VerificationResult | None
    config_yaml: str
    trace: list[NodeTrace] = Field(description="per node: inputs read, model calls (rendered prompts, scores), timing")


class ReplayRequest(StrictModel):
    """Fork a recorded run just before a node, as `claimflow replay` does."""

    from_node: StageName | None = Field(
        None, description="re-run from this stage (default: the first one an edit or prompt affects)"
    )
    edits: list[str] = Field(
        default_factory=list,
        description="state edits, PATH=VALUE each, e.g. evidence_stances.0.label=REFUTE (replay --set)",
    )
    prompts: dict[str, str] = Field(
        default_factory=dict,
        description='other prompt versions: prompt key -> id@version, e.g. {"veracity": '
        '"veracity_justifications_rawfc@1"} (replay --prompt)',
    )


class ReplayResponse(StrictModel):
    run_id: str = Field(description="the new run")
    parent_run: str
    from_node: str
    changes: list[str]
    diff: list[str] = Field(description="what changed in the result, one line each")
    result: VerificationResult


class ABRunSummary(StrictModel):
    """One A/B run of the evaluation store (`claimflow eval run`)."""

    run_id: str
    created: float
    stage: str
    dataset: dict[str, Any]
    variants: list[str]
    baseline: str
    metric: str
    predictions: dict[str, int] = Field(description="variant -> items predicted so far")

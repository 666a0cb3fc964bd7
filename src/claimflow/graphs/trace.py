"""What each node read, sent to its models and got back: the ``trace`` channel of the graph state.

Every node is wrapped (``graphs/nodes/_instrument.py``) so that, while it runs, the backends it uses
log each request with its answer: the rendered messages, the assistant prefix, the candidate label
words and their raw log-probabilities (``score``), or the generated text (``generate`` and
``generate_structured``). The backends do so because the :class:`~claimflow.verifier.Verifier`
wraps each of them in a :class:`~claimflow.graphs.tracing_backend.TracingBackend`, as an A/B run
wraps them in a :class:`~claimflow.evals.cache.CachingBackend`; the classes in ``claimflow.llm``
and the predictors stay untouched. :class:`ReadRecorder` notes the state keys a node reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from claimflow.types import StrictModel

CallKind = Literal["score", "generate", "structured"]

BOOKKEEPING_KEYS = frozenset({"stages_run", "prompts", "node_seconds", "model_calls", "forward_passes", "trace"})
"""State channels the instrumentation writes (merged across nodes by reducers)."""


class TracedMessage(StrictModel):
    role: str
    content: str


class ModelCall(StrictModel):
    """One request a node handed to a backend, and what came back."""

    kind: CallKind
    backend: str = Field(description="kind:model_id")
    batch: int = Field(description="index of the backend call (batch) within the node")
    messages: list[TracedMessage]
    assistant_prefix: str = ""
    candidates: list[str] = Field(default_factory=list, description="label words scored (score calls)")
    logprobs: dict[str, float] | None = Field(None, description="raw log-probability per candidate")
    output: str | None = Field(None, description="generated text, or the structured answer as JSON")
    params: dict[str, float | int | str | None] = Field(default_factory=dict)
    seconds: float = Field(description="wall time of the batch divided by its size")
    error: str | None = None


class NodeTrace(StrictModel):
    """What one node did: the state keys it read and wrote, its model calls, its timing."""

    node: str
    reads: list[str]
    writes: list[str]
    calls: list[ModelCall] = Field(default_factory=list)
    seconds: float
    model_calls: int = 0
    forward_passes: int = 0
    started_at: float = Field(description="unix time the node started")
    inherited_from: str | None = Field(
        None, description="run id this entry was copied from when a replay forked that run"
    )


TRACE_TYPES: tuple[type[BaseModel], ...] = (TracedMessage, ModelCall, NodeTrace)


class ReadRecorder(dict[str, Any]):
    """The state handed to a node, noting which keys the node looks at."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__(state)
        self.reads: list[str] = []

    def _note(self, key: str) -> None:
        if key not in self.reads:
            self.reads.append(key)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._note(key)
        return super().__contains__(key)

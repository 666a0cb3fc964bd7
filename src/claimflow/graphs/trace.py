"""What each node read, sent to its models and got back: the ``trace`` channel of the graph state.

Every node is wrapped (``graphs/nodes/_instrument.py``) so that, while it runs, the backends it uses
log each request with its answer: the rendered messages, the assistant prefix, the candidate label
words and their raw log-probabilities (``score``), or the generated text (``generate`` and
``generate_structured``). The log lives in a :class:`~contextvars.ContextVar`, so two graphs
running in different threads never mix their calls; outside a node the shim is one ``ContextVar``
read and a plain call.

The shim is installed on each backend *instance* the first time a node uses it (an instance
attribute that forwards to the class's method), so the classes in ``claimflow.llm`` and the
predictors stay untouched and ``isinstance`` checks keep working.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from claimflow.llm.base import Backend, GenRequest, Message, ScoreRequest

CallKind = Literal["score", "generate", "structured"]

BOOKKEEPING_KEYS = frozenset({"stages_run", "prompts", "node_seconds", "model_calls", "forward_passes", "trace"})
"""State channels the instrumentation writes (merged across nodes by reducers)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TracedMessage(_Frozen):
    role: str
    content: str


class ModelCall(_Frozen):
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


class NodeTrace(_Frozen):
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


# --- recording ---------------------------------------------------------------------------------


@dataclass
class CallLog:
    """The calls of one node run, filled by the backend shims."""

    calls: list[ModelCall] = field(default_factory=list)
    batches: int = 0

    def next_batch(self) -> int:
        self.batches += 1
        return self.batches - 1


_ACTIVE: ContextVar[CallLog | None] = ContextVar("claimflow_trace_log", default=None)
_INSIDE: ContextVar[bool] = ContextVar("claimflow_trace_inside", default=False)
_HOOKED_ATTR = "_claimflow_trace_hooked"


@contextmanager
def recording() -> Iterator[CallLog]:
    """Collect the model calls made (in this context) until the block ends."""
    log = CallLog()
    token = _ACTIVE.set(log)
    try:
        yield log
    finally:
        _ACTIVE.reset(token)


def _messages(messages: Sequence[Message]) -> list[TracedMessage]:
    # trusted values from our own dataclasses: skip validation, this runs once per model request
    return [TracedMessage.model_construct(role=m.role, content=m.content) for m in messages]


def _label(backend: Backend) -> str:
    return f"{backend.kind}:{backend.model_id}"


def _timed(log: CallLog, fn: Callable[[], Any]) -> tuple[Any, float, int]:
    batch = log.next_batch()
    token = _INSIDE.set(True)  # a backend that calls its own methods is logged once
    start = time.perf_counter()
    try:
        return fn(), time.perf_counter() - start, batch
    finally:
        _INSIDE.reset(token)


def _active() -> CallLog | None:
    return None if _INSIDE.get() else _ACTIVE.get()


def _error_text(exc: BaseException) -> str:
    raw = getattr(exc, "raw", None)
    return f"{type(exc).__name__}: {exc}" + (f" (raw output: {raw!r})" if raw else "")


def hook_backend(backend: Backend) -> None:
    """Install the recording shims on ``backend`` (idempotent)."""
    if getattr(backend, _HOOKED_ATTR, False):
        return
    score, generate, structured = backend.score, backend.generate, backend.generate_structured
    label = _label(backend)

    def traced_score(requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        log = _active()
        if log is None:
            return score(requests)
        requests = list(requests)
        try:
            out, seconds, batch = _timed(log, lambda: score(requests))
        except Exception as exc:
            log.calls += [_score_call(label, r, None, 0.0, log.batches - 1, _error_text(exc)) for r in requests]
            raise
        each = seconds / max(1, len(requests))
        log.calls += [_score_call(label, r, lp, each, batch) for r, lp in zip(requests, out, strict=False)]
        return out

    def traced_generate(requests: Sequence[GenRequest]) -> list[Any]:
        log = _active()
        if log is None:
            return generate(requests)
        requests = list(requests)
        try:
            out, seconds, batch = _timed(log, lambda: generate(requests))
        except Exception as exc:
            log.calls += [_gen_call(label, r, None, 0.0, log.batches - 1, _error_text(exc)) for r in requests]
            raise
        each = seconds / max(1, len(requests))
        log.calls += [_gen_call(label, r, g.text, each, batch) for r, g in zip(requests, out, strict=False)]
        return out

    def traced_structured(messages: Sequence[Message], response_model: Any) -> Any:
        log = _active()
        if log is None:
            return structured(messages, response_model)
        try:
            answer, seconds, batch = _timed(log, lambda: structured(messages, response_model))
        except Exception as exc:
            log.calls.append(
                ModelCall(
                    kind="structured",
                    backend=label,
                    batch=log.batches - 1,
                    messages=_messages(messages),
                    output=getattr(exc, "raw", None),
                    params={"response_model": getattr(response_model, "__name__", str(response_model))},
                    seconds=0.0,
                    error=_error_text(exc),
                )
            )
            raise
        log.calls.append(
            ModelCall(
                kind="structured",
                backend=label,
                batch=batch,
                messages=_messages(messages),
                output=answer.model_dump_json() if isinstance(answer, BaseModel) else str(answer),
                params={"response_model": getattr(response_model, "__name__", str(response_model))},
                seconds=seconds,
            )
        )
        return answer

    # instance attributes shadow the class's methods; ``type(backend).score`` is untouched
    object.__setattr__(backend, "score", traced_score)
    object.__setattr__(backend, "generate", traced_generate)
    object.__setattr__(backend, "generate_structured", traced_structured)
    object.__setattr__(backend, _HOOKED_ATTR, True)


def _score_call(
    label: str, request: ScoreRequest, logprobs: dict[str, float] | None, seconds: float, batch: int, error: str = ""
) -> ModelCall:
    return ModelCall.model_construct(
        kind="score",
        backend=label,
        batch=batch,
        messages=_messages(request.messages),
        assistant_prefix=request.assistant_prefix,
        candidates=list(request.candidates),
        logprobs=dict(logprobs) if logprobs is not None else None,
        seconds=seconds,
        error=error or None,
    )


def _gen_call(
    label: str, request: GenRequest, text: str | None, seconds: float, batch: int, error: str = ""
) -> ModelCall:
    return ModelCall.model_construct(
        kind="generate",
        backend=label,
        batch=batch,
        messages=_messages(request.messages),
        assistant_prefix=request.assistant_prefix,
        output=text,
        params={
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repetition_penalty": request.repetition_penalty,
            "seed": request.seed,
        },
        seconds=seconds,
        error=error or None,
    )


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

"""The backend wrapper that fills the trace: every request a node sends, with its answer.

:class:`TracingBackend` wraps a backend the way :class:`~claimflow.evals.cache.CachingBackend`
does: it is a :class:`~claimflow.llm.base.Backend` that hands every call to the backend inside.
While a node runs (inside :func:`recording`, which ``graphs/nodes/_instrument.py`` opens) it also
logs each request of ``score``, ``generate`` and ``generate_structured``: the rendered messages,
the assistant prefix, the candidate label words and their raw log-probabilities, or the generated
text, as :class:`~claimflow.graphs.trace.ModelCall`\\ s. The log lives in a
:class:`~contextvars.ContextVar`, so two graphs running in different threads on one backend never
mix their calls; outside a node a call is one ``ContextVar`` read and the inner call.

The :class:`~claimflow.verifier.Verifier` wraps every backend it is given or creates, so the
predictors call the wrapper. A trace must not change what it observes, so the wrapper is
transparent: counters, capabilities and provenance are the inner backend's own, any other
attribute (llama.cpp's ``encode``, ``llm``) is read from it, and ``isinstance`` sees its class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from claimflow.graphs.components import BackendFactory
from claimflow.graphs.trace import CallKind, ModelCall, TracedMessage
from claimflow.llm.base import Backend, Generation, GenRequest, M, Message, ScoreRequest
from claimflow.llm.factory import make_backend
from claimflow.types import ModelProvenance

R = TypeVar("R")
A = TypeVar("A")
Record = Callable[[str, R, A | None, float, int, BaseException | None], ModelCall]
"""(backend label, request, answer or None, seconds, batch index, error) -> the trace entry."""


@dataclass
class CallLog:
    """The calls of one node run, filled by the tracing backends."""

    calls: list[ModelCall] = field(default_factory=list)
    batches: int = 0

    def next_batch(self) -> int:
        self.batches += 1
        return self.batches - 1


_ACTIVE: ContextVar[CallLog | None] = ContextVar("claimflow_trace_log", default=None)
_INSIDE: ContextVar[bool] = ContextVar("claimflow_trace_inside", default=False)


@contextmanager
def recording() -> Iterator[CallLog]:
    """Collect the model calls made (in this context) until the block ends."""
    log = CallLog()
    token = _ACTIVE.set(log)
    try:
        yield log
    finally:
        _ACTIVE.reset(token)


def _active() -> CallLog | None:
    return None if _INSIDE.get() else _ACTIVE.get()


class TracingBackend(Backend):
    """``inner`` with its calls recorded into the active :func:`recording` (see the module)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.model_id)
        self.inner = inner
        self.kind = inner.kind
        self.capabilities = inner.capabilities
        self.stats = inner.stats  # the inner backend counts; the trace costs no model call
        self.label = f"{inner.kind}:{inner.model_id}"

    @classmethod
    def wrap(cls, backend: Backend) -> Backend:
        """``backend`` traced; a backend already traced is returned as it is."""
        return backend if type(backend) is cls else cls(backend)

    @classmethod
    def factory(cls, make: BackendFactory | None = None) -> BackendFactory:
        """A backend factory whose backends are traced (``make``, else the registry's ``make_backend``)."""
        inner = make or make_backend
        return lambda config, store: cls.wrap(inner(config, store))

    # --- the protocol, recorded ----------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        return self._through(requests, self.inner.score, _score_call)

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        return self._through(requests, self.inner.generate, _gen_call)

    def generate_structured(self, messages: Sequence[Message], response_model: type[M]) -> M:
        (answer,) = self._through(
            [messages],
            lambda one: [self.inner.generate_structured(one[0], response_model)],
            partial(_structured_call, response_model),
        )
        return answer

    def _through(self, requests: Sequence[R], call: Callable[[Sequence[R]], list[A]], record: Record[R, A]) -> list[A]:
        """One backend call (a batch): its requests and answers logged when a node is recording.
        A failed batch logs its requests with the error, then the error propagates."""
        log = _active()
        if log is None:
            return call(requests)
        batch = list(requests)
        index = log.next_batch()
        token = _INSIDE.set(True)  # a traced backend inside another one is logged once
        start = time.perf_counter()
        try:
            answers = call(batch)
        except Exception as exc:
            log.calls += [record(self.label, r, None, 0.0, index, exc) for r in batch]
            raise
        finally:
            seconds = time.perf_counter() - start
            _INSIDE.reset(token)
        each = seconds / max(1, len(batch))
        log.calls += [record(self.label, r, a, each, index, None) for r, a in zip(batch, answers, strict=False)]
        return answers

    # --- the rest is the inner backend's -------------------------------------------------------

    def provenance(self) -> ModelProvenance:
        return self.inner.provenance()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # reached only for names the wrapper lacks: the engine's own API (``encode``, ``llm``...)
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property  # type: ignore[misc]  # read-only on purpose: the class is the inner backend's
    def __class__(self) -> type:  # ``isinstance(traced, LlamaCppBackend)`` holds
        return type(self.inner)


# --- trace entries -------------------------------------------------------------------------------


def _messages(messages: Sequence[Message]) -> list[TracedMessage]:
    # trusted values from our own dataclasses: skip validation, this runs once per model request
    return [TracedMessage.model_construct(role=m.role, content=m.content) for m in messages]


def _error_text(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    raw = getattr(exc, "raw", None)
    return f"{type(exc).__name__}: {exc}" + (f" (raw output: {raw!r})" if raw else "")


def _score_call(
    label: str,
    request: ScoreRequest,
    logprobs: dict[str, float] | None,
    seconds: float,
    batch: int,
    error: BaseException | None,
) -> ModelCall:
    logprobs = dict(logprobs) if logprobs is not None else None
    return _request_call(
        "score", label, request, seconds, batch, error, candidates=list(request.candidates), logprobs=logprobs
    )


def _gen_call(
    label: str,
    request: GenRequest,
    generation: Generation | None,
    seconds: float,
    batch: int,
    error: BaseException | None,
) -> ModelCall:
    params = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "repetition_penalty": request.repetition_penalty,
        "seed": request.seed,
    }
    output = generation.text if generation is not None else None
    return _request_call("generate", label, request, seconds, batch, error, output=output, params=params)


def _request_call(
    kind: CallKind,
    label: str,
    request: ScoreRequest | GenRequest,
    seconds: float,
    batch: int,
    error: BaseException | None,
    **fields: Any,
) -> ModelCall:
    return ModelCall.model_construct(
        kind=kind,
        backend=label,
        batch=batch,
        messages=_messages(request.messages),
        assistant_prefix=request.assistant_prefix,
        seconds=seconds,
        error=_error_text(error),
        **fields,
    )


def _structured_call(
    response_model: type[BaseModel],
    label: str,
    messages: Sequence[Message],
    answer: Any,
    seconds: float,
    batch: int,
    error: BaseException | None,
) -> ModelCall:
    output: str | None
    if error is None:
        output = answer.model_dump_json() if isinstance(answer, BaseModel) else str(answer)
        failure = {}
    else:
        output, failure = getattr(error, "raw", None), {"error": _error_text(error)}
    return ModelCall(
        kind="structured",
        backend=label,
        batch=batch,
        messages=_messages(messages),
        output=output,
        params={"response_model": getattr(response_model, "__name__", str(response_model))},
        seconds=seconds,
        **failure,
    )

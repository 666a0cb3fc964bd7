"""The one protocol every inference backend implements: batched generation and label scoring."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from claimflow.errors import CapabilityError
from claimflow.types import ModelProvenance

M = TypeVar("M", bound=BaseModel)

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenRequest:
    """Generate a continuation of a chat. ``assistant_prefix`` is pre-filled into the answer."""

    messages: tuple[Message, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    assistant_prefix: str = ""
    seed: int | None = 0
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class ScoreRequest:
    """Score candidate continuations (label words) of the assistant's answer.

    The backend returns, per candidate, the total log-probability of the candidate's tokens right
    after ``messages`` + ``assistant_prefix``. Candidates absent from a backend's answer (e.g. an
    OpenAI server that only returns top-k log-probabilities) are omitted from the result.
    """

    messages: tuple[Message, ...]
    candidates: tuple[str, ...]
    assistant_prefix: str = ""


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass
class BackendStats:
    """Counters a backend keeps; nodes read the difference before/after a call."""

    calls: int = 0
    forward_passes: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def snapshot(self) -> BackendStats:
        return BackendStats(self.calls, self.forward_passes, self.prompt_tokens, self.completion_tokens)


@dataclass
class Capabilities:
    logprobs: bool = True
    """True when :meth:`Backend.score` gives exact log-probabilities for any candidate."""
    structured: bool = False
    """True when :meth:`Backend.generate_structured` is available."""
    top_logprobs_only: bool = False
    """True when scores come from a top-k list and rare candidates may be missing."""
    context_length: int | None = None


class Backend(abc.ABC):
    """Base class of the backends: batched ``generate`` and ``score`` over chat messages."""

    kind: str = "base"

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.stats = BackendStats()
        self.capabilities = Capabilities()

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        """Generate one continuation per request, in order."""

    @abc.abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        """Log-probabilities of each request's candidates (see :class:`ScoreRequest`)."""

    def generate_structured(self, messages: Sequence[Message], response_model: type[M]) -> M:
        """A ``response_model`` instance from the model's JSON answer (constrained or validated).

        Raises :class:`ParseError` (with the raw output) when the answer does not validate.
        """
        raise CapabilityError(f"the {self.kind} backend has no structured output")

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend=self.kind, model=self.model_id)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release the engine's resources (idempotent)."""


@runtime_checkable
class Engine(Protocol):
    """What a graph node's model looks like to the instrumentation: counters and provenance.
    Backends are engines; so are predictors that run their own model (soft prompts)."""

    stats: BackendStats

    def provenance(self) -> ModelProvenance: ...

    def close(self) -> None: ...


@dataclass
class CallCounter:
    """Difference of a backend's counters across one stage."""

    start: BackendStats
    backend: Engine
    extra: dict[str, int] = field(default_factory=dict)

    @classmethod
    def begin(cls, backend: Engine) -> CallCounter:
        return cls(start=backend.stats.snapshot(), backend=backend)

    def calls(self) -> int:
        return self.backend.stats.calls - self.start.calls

    def forward_passes(self) -> int:
        return self.backend.stats.forward_passes - self.start.forward_passes

"""A scripted backend for tests: deterministic generations and scores, every request recorded.

It is part of the package so that users can test their own pipelines and templates without a
model::

    fake = FakeBackend(
        generate_fn=lambda req: "The evidence says so.",
        score_fn=lambda req: {c: (0.0 if c == "Yes" else -3.0) for c in req.candidates},
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pydantic import ValidationError

from claimflow.errors import BackendError, ParseError
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, M, Message, ScoreRequest


class FakeBackend(Backend):
    """Scripted generations and scores.

    ``responses`` are returned in order (an error when they run out); otherwise ``generate_fn``
    decides, otherwise a fixed text. ``score_fn`` gives log-probabilities per request; the default
    scores every candidate 0.0 (a uniform distribution). With ``logprobs=False`` the backend
    behaves like an engine without log-probabilities and ``score`` raises.
    """

    kind = "fake"

    def __init__(
        self,
        model_id: str = "fake",
        *,
        responses: Iterable[str] | None = None,
        generate_fn: Callable[[GenRequest], str] | None = None,
        score_fn: Callable[[ScoreRequest], dict[str, float]] | None = None,
        structured_fn: Callable[[Sequence[Message]], str] | None = None,
        logprobs: bool = True,
        context_length: int | None = None,
    ) -> None:
        super().__init__(model_id)
        self._responses = list(responses) if responses is not None else None
        self._generate_fn = generate_fn
        self._score_fn = score_fn
        self._structured_fn = structured_fn
        self.capabilities = Capabilities(
            logprobs=logprobs, structured=structured_fn is not None, context_length=context_length
        )
        self.generate_batches: list[list[GenRequest]] = []
        self.score_batches: list[list[ScoreRequest]] = []

    @property
    def generate_requests(self) -> list[GenRequest]:
        return [r for batch in self.generate_batches for r in batch]

    @property
    def score_requests(self) -> list[ScoreRequest]:
        return [r for batch in self.score_batches for r in batch]

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        self.generate_batches.append(list(requests))
        out = []
        for request in requests:
            self.stats.calls += 1
            self.stats.forward_passes += 1
            out.append(Generation(text=self._next_text(request), finish_reason="stop"))
        return out

    def _next_text(self, request: GenRequest) -> str:
        if self._responses is not None:
            if not self._responses:
                raise BackendError("FakeBackend: scripted responses are exhausted")
            return self._responses.pop(0)
        if self._generate_fn is not None:
            return self._generate_fn(request)
        return "This is a scripted generation."

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        if not self.capabilities.logprobs:
            raise BackendError("FakeBackend configured without log-probabilities")
        self.score_batches.append(list(requests))
        out = []
        for request in requests:
            self.stats.calls += 1
            self.stats.forward_passes += 1
            if self._score_fn is not None:
                out.append(self._score_fn(request))
            else:
                out.append(dict.fromkeys(request.candidates, 0.0))
        return out

    def generate_structured(self, messages: Sequence[Message], response_model: type[M]) -> M:
        """``structured_fn`` returns the raw JSON text; it is validated like a real answer."""
        if self._structured_fn is None:
            return super().generate_structured(messages, response_model)
        raw = self._structured_fn(messages)
        self.stats.calls += 1
        self.stats.forward_passes += 1
        try:
            return response_model.model_validate_json(raw)
        except ValidationError as exc:
            raise ParseError("the structured answer does not validate", raw=raw) from exc

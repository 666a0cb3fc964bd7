"""OpenAI-compatible servers: the OpenAI API, a vLLM server, llama.cpp's server.

Generation uses the chat (default) or completions endpoint. Label scoring reads ``top_logprobs``:
with chat, the answer is generated for a few tokens and the label is read at the position right
after the template's answer prefix (servers cannot pre-fill the assistant turn); with completions,
the prefix is part of the prompt. Only the candidates' first tokens are visible in a top-k list, so
a multi-token label word is scored by its first token, and candidates outside the top k are
missing (the verbalizer treats them as impossible). When a chat model does not write the answer
prefix, the label is read at the start of its answer instead. Retries with exponential backoff and
timeouts come from the ``openai`` client.

A batch's requests (one stage's prompts) are sent concurrently, at most ``max_concurrency`` in
flight (a thread pool over the client, which is thread-safe); results keep the input order, and the
first error stops the batch. A server that batches requests (vLLM, llama.cpp's ``--n_parallel``)
answers them together; one that serves a request at a time still overlaps the network round trips.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import openai
from pydantic import BaseModel

from claimflow.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CapabilityError,
    ContextLengthError,
    ParseError,
)
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, Message, ScoreRequest
from claimflow.types import ModelProvenance

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")
T = TypeVar("T")
Api = Literal["chat", "completions"]


def completion_prompt(messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """Plain-text rendering of a chat for the completions endpoint."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    body = "\n\n".join(f"{names[m.role]}: {m.content}" for m in messages)
    return f"{body}\n\nAssistant:{(' ' + assistant_prefix) if assistant_prefix else ''}"


def match_candidates(top: dict[str, float], candidates: Sequence[str], lead: str | None = None) -> dict[str, float]:
    """Log-probability of each candidate whose first token is visible in ``top`` (token -> logprob).

    A token equal to the candidate wins; otherwise the longest non-blank token that the candidate
    starts with (its first sub-word). ``lead``, when given, replaces the candidate's leading
    whitespace before matching: ``""`` at the very start of an answer (where ``" true"`` is written
    ``"true"``), ``" "`` right after ``"Assistant:"`` (where ``"Yes"`` is written ``" Yes"``). The
    result is keyed by the candidates as given.
    """
    out: dict[str, float] = {}
    for candidate in candidates:
        written = candidate if lead is None else lead + candidate.lstrip()
        if written in top:
            out[candidate] = top[written]
            continue
        prefixes = [t for t in top if t.strip() and written.startswith(t)]
        if prefixes:
            out[candidate] = top[max(prefixes, key=len)]
    return out


def _lead_after(prefix: str) -> str | None:
    """How a label word is written right after an answer prefix: as given, or after one space when the
    prefix ends with whitespace (the model writes ``": true"`` as ``":"`` + ``" true"``)."""
    return " " if prefix and prefix[-1].isspace() else None


class OpenAIBackend(Backend):
    kind = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api: Api = "chat",
        timeout_s: float = 60.0,
        max_retries: int = 2,
        top_logprobs: int = 20,
        seed: int | None = 0,
        context_length: int | None = None,
        max_concurrency: int = 4,
    ) -> None:
        super().__init__(model)
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._stats_lock = threading.Lock()
        self.base_url = base_url
        self.api: Api = api
        self.top_logprobs = top_logprobs
        self.seed = seed
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "no-key",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.capabilities = Capabilities(
            logprobs=True, structured=True, top_logprobs_only=True, context_length=context_length
        )

    @classmethod
    def from_env_key(cls, model: str, api_key_env: str, **kwargs: Any) -> OpenAIBackend:
        return cls(model, api_key=os.environ.get(api_key_env), **kwargs)

    # --- calling ---------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self.base_url or "the OpenAI API"

    def _translate(self, exc: openai.APIError) -> Exception:
        """The claimflow error for an error of the ``openai`` client."""
        where = self._where
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeoutError(
                f"{where} did not answer within the timeout (after retries): raise timeout_s or check the server"
            )
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(
                f"cannot reach {where}: {exc}. Is the server running, and is base_url right?"
            )
        if isinstance(exc, openai.BadRequestError):
            text = str(exc)
            if "context" in text.lower() and ("length" in text.lower() or "exceed" in text.lower()):
                return ContextLengthError(f"the prompt does not fit the served model's context: {text}")
            return BackendError(f"{where} rejected the request: {text}")
        if isinstance(exc, openai.APIStatusError):
            return BackendError(f"{where} answered HTTP {exc.status_code}: {exc.message}")
        return BackendError(f"{where} failed: {exc}")

    @contextlib.contextmanager
    def _reading(self, response: Any) -> Iterator[None]:
        """Turn a malformed (but JSON) answer into a :class:`BackendError` while it is read."""
        try:
            yield
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
            raise BackendError(
                f"{self._where} answered something that is not an OpenAI completion ({exc}): {str(response)[:300]!r}"
            ) from exc

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        where = self._where
        try:
            response = fn(model=self.model_id, **kwargs)
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        except ValueError as exc:  # a 200 answer whose body is not JSON (json.JSONDecodeError)
            raise BackendError(f"{where} answered something that is not JSON: {exc}") from exc
        choices = getattr(response, "choices", None)
        if not choices or not isinstance(choices, list):
            raise BackendError(f"{where} answered something that is not an OpenAI completion: {str(response)[:300]!r}")
        with self._reading(response):
            usage = getattr(response, "usage", None)
            prompt_tokens = int(usage.prompt_tokens or 0) if usage is not None else 0
            completion_tokens = int(usage.completion_tokens or 0) if usage is not None else 0
        with self._stats_lock:  # requests of one batch answer on several threads
            self.stats.calls += 1
            self.stats.forward_passes += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens
        return response

    def _map(self, fn: Callable[[T], R], requests: Sequence[T]) -> list[R]:
        """``fn`` over ``requests``, at most ``max_concurrency`` at once, results in input order."""
        if self.max_concurrency == 1 or len(requests) <= 1:
            return [fn(r) for r in requests]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="claimflow-openai")
        futures = [self._pool.submit(fn, r) for r in requests]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _chat_messages(self, messages: Sequence[Message]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in messages]

    # --- generate --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        return self._map(self._generate_one, requests)

    def _generate_one(self, request: GenRequest) -> Generation:
        common: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        if request.stop:
            common["stop"] = list(request.stop)
        seed = request.seed if request.seed is not None else self.seed
        if seed is not None:
            common["seed"] = seed
        if self.api == "chat":
            resp = self._call(
                self.client.chat.completions.create, messages=self._chat_messages(request.messages), **common
            )
            with self._reading(resp):
                choice = resp.choices[0]
                text = choice.message.content or ""
            if request.assistant_prefix and text.lstrip().startswith(request.assistant_prefix.strip()):
                text = text.lstrip()[len(request.assistant_prefix.strip()) :]
        else:
            prompt = completion_prompt(request.messages, request.assistant_prefix)
            # The plain-text chat goes on with made-up turns unless told where the answer ends (at most
            # 4 stop sequences are allowed).
            stops = list(request.stop)
            if len(stops) < 4:
                stops.append("\n\nUser:")
            common["stop"] = stops
            resp = self._call(self.client.completions.create, prompt=prompt, **common)
            with self._reading(resp):
                choice = resp.choices[0]
                text = choice.text or ""
        with self._reading(resp):
            usage = resp.usage
            return Generation(
                text=text,
                prompt_tokens=(usage.prompt_tokens if usage else 0) or 0,
                completion_tokens=(usage.completion_tokens if usage else 0) or 0,
                finish_reason=choice.finish_reason,
            )

    # --- score -----------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        return self._map(self._score_one, requests)

    def _score_one(self, request: ScoreRequest) -> dict[str, float]:
        no_logprobs = f"{self._where} returned no logprobs: use the text verbalizer"
        if self.api == "completions":
            # The answer starts after "Assistant:" + " " + prefix; a trailing space is left for the
            # label word's own token (" Yes", " true") rather than put at the end of the prompt.
            prompt = completion_prompt(request.messages, request.assistant_prefix).rstrip()
            lead = _lead_after(request.assistant_prefix) if request.assistant_prefix else " "
            resp = self._call(
                self.client.completions.create,
                prompt=prompt,
                max_tokens=1,
                temperature=0.0,
                logprobs=self.top_logprobs,
            )
            with self._reading(resp):
                logprobs = resp.choices[0].logprobs
                if logprobs is None or logprobs.top_logprobs is None:
                    raise CapabilityError(no_logprobs)
                if not logprobs.top_logprobs:  # the model ended its answer at once
                    return {}
                return match_candidates(dict(logprobs.top_logprobs[0] or {}), request.candidates, lead)
        prefix = request.assistant_prefix.strip()
        resp = self._call(
            self.client.chat.completions.create,
            messages=self._chat_messages(request.messages),
            max_tokens=16 if prefix else 1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=self.top_logprobs,
        )
        with self._reading(resp):
            logprobs = resp.choices[0].logprobs
            content = logprobs.content if logprobs is not None else None
            if content is None:
                raise CapabilityError(no_logprobs)
            # Without a prefix (or when the model did not write it) the label is the answer's first
            # token, written without a leading space.
            position, lead = 0, ""
            if prefix:
                written = ""
                for i, token in enumerate(content):
                    written += token.token
                    if written.strip().endswith(prefix):
                        position, lead = i + 1, _lead_after(request.assistant_prefix)
                        break
            if position >= len(content):  # the answer ended (or was cut) right after the prefix
                return {}
            top = {t.token: t.logprob for t in content[position].top_logprobs or []}
            return match_candidates(top, request.candidates, lead)

    # --- structured output -------------------------------------------------------------------------

    def generate_structured(self, messages: Sequence[Message], response_model: type[M], max_retries: int = 2) -> M:
        """A pydantic object from the model's JSON answer, validated and re-asked by instructor."""
        import instructor

        client = instructor.from_openai(self.client, mode=instructor.Mode.JSON)
        try:
            result = client.chat.completions.create(
                model=self.model_id,
                messages=self._chat_messages(messages),  # type: ignore[arg-type]
                response_model=response_model,
                max_retries=max_retries,
                temperature=0.0,
            )
        except Exception as exc:  # instructor wraps the client's errors in its own retry errors
            cause: BaseException | None = exc
            for _ in range(10):  # the chain is short; a bound guards against cycles
                if cause is None or isinstance(cause, openai.APIError):
                    break
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, openai.APIError):
                raise self._translate(cause) from exc
            # the server answered, but not with a valid object: a parse failure, as on every backend
            last = getattr(exc, "last_completion", None)
            try:
                raw = str(last.choices[0].message.content or "") if last is not None else ""
            except (AttributeError, IndexError, TypeError):
                raw = str(last)
            raise ParseError(
                f"structured output from {self._where} did not validate after {max_retries} retries: {exc}", raw=raw
            ) from exc
        self.stats.calls += 1
        return result

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend=self.kind, model=self.model_id, source=self.base_url or "api.openai.com")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.client.close()

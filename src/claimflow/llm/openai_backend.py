"""OpenAI-compatible servers: the OpenAI API, a vLLM server, llama.cpp's server.

Generation uses the chat (default) or completions endpoint. Label scoring reads ``top_logprobs``:
with chat, the answer is generated for a few tokens and the label is read at the position right
after the template's answer prefix (servers cannot pre-fill the assistant turn); with completions,
the prefix is part of the prompt. Only the candidates' first tokens are visible in a top-k list, so
a multi-token label word is scored by its first token, and candidates outside the top k are
missing (the verbalizer treats them as impossible). Retries with exponential backoff and timeouts
come from the ``openai`` client.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import openai
from pydantic import BaseModel

from claimflow.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CapabilityError,
    ContextLengthError,
)
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, Message, ScoreRequest
from claimflow.types import ModelProvenance

M = TypeVar("M", bound=BaseModel)
Api = Literal["chat", "completions"]


def completion_prompt(messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """Plain-text rendering of a chat for the completions endpoint."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    body = "\n\n".join(f"{names[m.role]}: {m.content}" for m in messages)
    return f"{body}\n\nAssistant:{(' ' + assistant_prefix) if assistant_prefix else ''}"


def match_candidates(top: dict[str, float], candidates: Sequence[str]) -> dict[str, float]:
    """Log-probability of each candidate whose first token is visible in ``top`` (token -> logprob).

    A token equal to the candidate wins; otherwise the longest non-blank token that the candidate
    starts with (its first sub-word).
    """
    out: dict[str, float] = {}
    for candidate in candidates:
        if candidate in top:
            out[candidate] = top[candidate]
            continue
        prefixes = [t for t in top if t.strip() and candidate.startswith(t)]
        if prefixes:
            out[candidate] = top[max(prefixes, key=len)]
    return out


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
    ) -> None:
        super().__init__(model)
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
        self.capabilities = Capabilities(logprobs=True, top_logprobs_only=True, context_length=context_length)

    @classmethod
    def from_env_key(cls, model: str, api_key_env: str, **kwargs: Any) -> OpenAIBackend:
        return cls(model, api_key=os.environ.get(api_key_env), **kwargs)

    # --- calling ---------------------------------------------------------------------------------

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        where = self.base_url or "the OpenAI API"
        try:
            response = fn(model=self.model_id, **kwargs)
        except openai.APITimeoutError as exc:
            raise BackendTimeoutError(
                f"{where} did not answer within the timeout (after retries): raise timeout_s or check the server"
            ) from exc
        except openai.APIConnectionError as exc:
            raise BackendUnavailableError(
                f"cannot reach {where}: {exc}. Is the server running, and is base_url right?"
            ) from exc
        except openai.BadRequestError as exc:
            text = str(exc)
            if "context" in text.lower() and ("length" in text.lower() or "exceed" in text.lower()):
                raise ContextLengthError(f"the prompt does not fit the served model's context: {text}") from exc
            raise BackendError(f"{where} rejected the request: {text}") from exc
        except openai.APIStatusError as exc:
            raise BackendError(f"{where} answered HTTP {exc.status_code}: {exc.message}") from exc
        except openai.APIError as exc:
            raise BackendError(f"{where} failed: {exc}") from exc
        choices = getattr(response, "choices", None)
        if not choices:
            raise BackendError(f"{where} answered something that is not an OpenAI completion: {str(response)[:300]!r}")
        self.stats.calls += 1
        self.stats.forward_passes += 1
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.stats.prompt_tokens += usage.prompt_tokens or 0
            self.stats.completion_tokens += usage.completion_tokens or 0
        return response

    def _chat_messages(self, messages: Sequence[Message]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in messages]

    # --- generate --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        return [self._generate_one(r) for r in requests]

    def _generate_one(self, request: GenRequest) -> Generation:
        common: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        if request.stop:
            common["stop"] = list(request.stop)
        if request.seed is not None:
            common["seed"] = request.seed
        if self.api == "chat":
            resp = self._call(
                self.client.chat.completions.create, messages=self._chat_messages(request.messages), **common
            )
            choice = resp.choices[0]
            text = choice.message.content or ""
            if request.assistant_prefix and text.lstrip().startswith(request.assistant_prefix.strip()):
                text = text.lstrip()[len(request.assistant_prefix.strip()) :]
        else:
            prompt = completion_prompt(request.messages, request.assistant_prefix)
            resp = self._call(self.client.completions.create, prompt=prompt, **common)
            choice = resp.choices[0]
            text = choice.text or ""
        usage = resp.usage
        return Generation(
            text=text,
            prompt_tokens=(usage.prompt_tokens if usage else 0) or 0,
            completion_tokens=(usage.completion_tokens if usage else 0) or 0,
            finish_reason=choice.finish_reason,
        )

    # --- score -----------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        return [self._score_one(r) for r in requests]

    def _score_one(self, request: ScoreRequest) -> dict[str, float]:
        if self.api == "completions":
            prompt = completion_prompt(request.messages, request.assistant_prefix)
            resp = self._call(
                self.client.completions.create,
                prompt=prompt,
                max_tokens=1,
                temperature=0.0,
                logprobs=self.top_logprobs,
            )
            logprobs = resp.choices[0].logprobs
            if logprobs is None or not logprobs.top_logprobs:
                raise CapabilityError(f"{self.base_url} returned no logprobs: use the text verbalizer")
            return match_candidates(dict(logprobs.top_logprobs[0]), request.candidates)
        prefix = request.assistant_prefix.strip()
        resp = self._call(
            self.client.chat.completions.create,
            messages=self._chat_messages(request.messages),
            max_tokens=16 if prefix else 1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=self.top_logprobs,
        )
        content = resp.choices[0].logprobs.content if resp.choices[0].logprobs else None
        if not content:
            raise CapabilityError(f"{self.base_url or 'the server'} returned no logprobs: use the text verbalizer")
        position = 0
        if prefix:
            written = ""
            for i, token in enumerate(content):
                written += token.token
                if written.strip().endswith(prefix):
                    position = i + 1
                    break
        if position >= len(content):
            return {}
        top = {t.token: t.logprob for t in content[position].top_logprobs or []}
        return match_candidates(top, request.candidates)

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
        except openai.APIConnectionError as exc:
            raise BackendUnavailableError(f"cannot reach {self.base_url}: {exc}") from exc
        except Exception as exc:  # instructor raises its own retry errors
            raise BackendError(f"structured output failed after {max_retries} retries: {exc}") from exc
        self.stats.calls += 1
        return result

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend=self.kind, model=self.model_id, source=self.base_url or "api.openai.com")

    def close(self) -> None:
        self.client.close()

"""llama.cpp backend (llama-cpp-python): the default engine for the embedded GGUF models.

Label scoring evaluates the prompt once and reads the next-token distribution from the last
position; multi-token label words cost one extra token evaluation per extra token. The KV cache
keeps the longest common prefix between consecutive prompts, so the evidence prompts of one claim
(which share the system text and the claim) only evaluate their differing suffix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from claimflow.errors import BackendError, BackendUnavailableError, ContextLengthError, ParseError
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, M, Message, ScoreRequest
from claimflow.llm.tokens import continuation_ids
from claimflow.types import ModelProvenance

log = logging.getLogger(__name__)


class LlamaCppBackend(Backend):
    kind = "llamacpp"

    def __init__(
        self,
        model_path: str,
        *,
        model_id: str | None = None,
        sha256: str | None = None,
        context_length: int = 2048,
        threads: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model_id or model_path)
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise BackendUnavailableError("the llamacpp backend needs: pip install 'claimflow[local]'") from exc
        self.sha256 = sha256
        self.seed = seed
        try:
            self.llm = llama_cpp.Llama(
                model_path=model_path,
                n_ctx=context_length,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp could not load {model_path}: {exc}") from exc
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._formatter: Any = None
        if template:
            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "replace")
            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
            self._stop = [eos]
        else:
            log.warning("%s has no chat template; prompts use a plain layout", model_path)
            self._stop = []
        self.capabilities = Capabilities(logprobs=True, structured=True, context_length=self.n_ctx)

    # --- prompts ----------------------------------------------------------------------------------

    def prompt_text(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self._formatter is not None:
            text = self._formatter(messages=chat).prompt
        else:
            text = "\n\n".join(m.content for m in messages) + "\n\n"
        return str(text) + assistant_prefix

    def encode(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _encode_plain(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _check_length(self, n_tokens: int, extra: int) -> None:
        if n_tokens + extra > self.n_ctx:
            raise ContextLengthError(
                f"the prompt has {n_tokens} tokens (+{extra} to generate), more than the context of {self.n_ctx}: "
                "shorten the claim or evidence, or raise context_length in the backend config"
            )

    # --- scoring ----------------------------------------------------------------------------------

    def _eval_prompt(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, reusing the cached common prefix of the previous evaluation."""
        llm = self.llm
        common = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens], tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always evaluate at least one token for fresh logits
        llm.n_tokens = common
        llm.eval(tokens[common:])
        self.stats.forward_passes += 1
        self.stats.prompt_tokens += len(tokens) - common

    def _last_logprobs(self) -> np.ndarray:
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,)).astype(np.float64)
        return logits - np.logaddexp.reduce(logits)

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        return [self._score_one(r) for r in requests]

    def _score_one(self, request: ScoreRequest) -> dict[str, float]:
        text = self.prompt_text(request.messages, request.assistant_prefix)
        prompt = self.encode(text)
        conts = {c: continuation_ids(self._encode_plain, text, prompt, c) for c in request.candidates}
        self._check_length(len(prompt), max(len(t) for t in conts.values()))
        self.stats.calls += 1
        self._eval_prompt(prompt)
        first = self._last_logprobs()
        scores = {c: float(first[toks[0]]) for c, toks in conts.items()}
        for cand, toks in conts.items():
            if len(toks) == 1:
                continue
            self.llm.n_tokens = len(prompt)
            total = scores[cand]
            for k in range(1, len(toks)):
                self.llm.eval([toks[k - 1]])
                self.stats.forward_passes += 1
                total += float(self._last_logprobs()[toks[k]])
            scores[cand] = total
        self.llm.n_tokens = len(prompt)
        return scores

    # --- generation -------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        return [self._generate_one(r) for r in requests]

    def _generate_one(self, request: GenRequest) -> Generation:
        text = self.prompt_text(request.messages, request.assistant_prefix)
        n_prompt = len(self.encode(text))
        self._check_length(n_prompt, request.max_tokens)
        response: Any = self.llm.create_completion(
            prompt=text,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_k=1 if request.temperature == 0 else 40,
            repeat_penalty=request.repetition_penalty,
            stop=[*self._stop, *request.stop] or None,
            seed=request.seed if request.seed is not None else self.seed,
        )
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        completion_tokens = int(usage.get("completion_tokens", 0))
        self.stats.calls += 1
        self.stats.forward_passes += 1 + completion_tokens
        self.stats.prompt_tokens += n_prompt
        self.stats.completion_tokens += completion_tokens
        return Generation(choice["text"], n_prompt, completion_tokens, choice.get("finish_reason"))

    def generate_structured(self, messages: Sequence[Message], response_model: type[M], max_tokens: int = 128) -> M:
        """JSON constrained by a grammar built from the model's JSON schema, then validated."""
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(response_model.model_json_schema()), verbose=False)
        text = self.prompt_text(messages)
        self._check_length(len(self.encode(text)), max_tokens)
        response: Any = self.llm.create_completion(
            prompt=text, max_tokens=max_tokens, temperature=0.0, top_k=1, grammar=grammar, stop=self._stop or None
        )
        raw = response["choices"][0]["text"]
        self.stats.calls += 1
        self.stats.forward_passes += 1 + int((response.get("usage") or {}).get("completion_tokens", 0))
        try:
            return response_model.model_validate_json(raw)
        except ValidationError as exc:
            raise ParseError(f"the structured answer does not validate: {exc.errors()[0]['msg']}", raw=raw) from exc

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend=self.kind, model=self.model_id, sha256=self.sha256)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None  # type: ignore[assignment]

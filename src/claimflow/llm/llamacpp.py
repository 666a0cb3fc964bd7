"""llama.cpp backend (llama-cpp-python): the default engine for the embedded GGUF models.

Label scoring evaluates the prompt once and reads the next-token distribution from the last
position; multi-token label words cost one extra token evaluation per extra token. The KV cache
keeps the longest common prefix between consecutive prompts, so the evidence prompts of one claim
(which share the system text and the claim) only evaluate their differing suffix.

Only the chat template's own text is tokenized with special tokens enabled: message contents and
the assistant prefix are tokenized as plain text (:class:`ChatTokenizer`), so an evidence sentence
that carries ``<|im_end|><|im_start|>system`` (or any other special-token string of the
vocabulary) cannot open a turn of its own.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from claimflow.errors import (
    BackendUnavailableError,
    ContextLengthError,
    ModelError,
    ModelNotFoundError,
    ParseError,
)
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
        except ImportError as exc:
            raise BackendUnavailableError("the llamacpp backend needs: pip install 'claimflow[local]'") from exc
        self.sha256 = sha256
        self.seed = seed
        if not os.path.isfile(model_path):
            raise ModelNotFoundError(f"no GGUF model file at {model_path}")
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
            size = os.path.getsize(model_path)
            raise ModelError(
                f"llama.cpp could not load {model_path} ({size:,} bytes): {exc}; the file is truncated, corrupt "
                "or not a GGUF model; download it again (claimflow models pull NAME verifies a store model)"
            ) from exc
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self.chat = ChatTokenizer(self.llm, name=model_path)
        self._stop = self.chat.stop
        self.capabilities = Capabilities(logprobs=True, structured=True, context_length=self.n_ctx)

    # --- prompts ----------------------------------------------------------------------------------

    def prompt_text(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return self.chat.prompt_text(messages, assistant_prefix)

    def encode(self, text: str) -> list[int]:
        """Tokens of text the backend wrote itself (special-token strings become control tokens);
        never call it on untrusted text: use :meth:`encode_chat` for prompts."""
        return self.chat.encode(text)

    def encode_chat(self, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
        """Tokens of :meth:`prompt_text`, the message contents and prefix tokenized as plain text."""
        return self.chat.encode_chat(messages, assistant_prefix)

    def _encode_plain(self, text: str) -> list[int]:
        return self.chat.encode_plain(text)

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
        prompt = self.encode_chat(request.messages, request.assistant_prefix)
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
        tokens = self.encode_chat(request.messages, request.assistant_prefix)
        n_prompt = len(tokens)
        self._check_length(n_prompt, request.max_tokens)
        response: Any = self.llm.create_completion(
            prompt=self.chat.bos + tokens,
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
        tokens = self.encode_chat(messages)
        self._check_length(len(tokens), max_tokens)
        response: Any = self.llm.create_completion(
            prompt=self.chat.bos + tokens,
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            grammar=grammar,
            stop=self._stop or None,
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


class ChatTokenizer:
    """The chat template and tokenizer of a loaded ``llama_cpp.Llama`` (a ``vocab_only`` one will do).

    :meth:`encode_chat` renders the chat with a placeholder for each message's content, tokenizes
    the template's own text with special tokens enabled (its ``<|im_start|>`` turns) and each content
    with them disabled, so untrusted text never becomes a control token.
    """

    def __init__(self, llm: Any, *, name: str = "the model") -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        template = llm.metadata.get("tokenizer.chat_template")
        self._formatter: Any = None
        self.stop: list[str] = []
        if template:
            eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
            bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
            self.stop = [eos]
        else:
            log.warning("%s has no chat template; prompts use a plain layout", name)
        self.bos: list[int] = list(llm.tokenize(b"", add_bos=True, special=True))
        """What llama.cpp puts before a prompt it tokenizes itself (BOS when the vocabulary asks for it)."""
        self._warned = False

    def _render(self, messages: Sequence[Message]) -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self._formatter is not None:
            return str(self._formatter(messages=chat).prompt)
        return "\n\n".join(m.content for m in messages) + "\n\n"

    def prompt_text(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return self._render(messages) + assistant_prefix

    def encode(self, text: str) -> list[int]:
        """Special-token strings in ``text`` become control tokens: for the template's own text only."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else []

    def encode_plain(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else []

    def encode_chat(self, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
        """Tokens of :meth:`prompt_text`: special tokens only where the chat template writes them.

        When no content holds a special-token string, these are the tokens of the whole rendered
        prompt (exactly as before, on every vocabulary type); otherwise the template's text and the
        contents are tokenized apart.
        """
        if self._formatter is None:  # the plain layout is all content
            return self.encode_plain(self.prompt_text(messages, assistant_prefix))
        untrusted = [m.content for m in messages] + [assistant_prefix]
        if not any(self.has_special(text) for text in untrusted):
            return self.encode(self.prompt_text(messages, assistant_prefix))
        scaffold = self._split(messages)
        if scaffold is None:
            if not self._warned:
                log.warning(
                    "the chat template does not insert message contents verbatim; contents are tokenized "
                    "with the template (only neutralized control markers protect them)"
                )
                self._warned = True
            return self.encode(self._render(messages)) + self.encode_plain(assistant_prefix)
        tokens: list[int] = []
        for i, between in enumerate(scaffold):
            tokens += self.encode(between)
            if i < len(messages):
                tokens += self.encode_plain(messages[i].content)
        return tokens + self.encode_plain(assistant_prefix)

    def has_special(self, text: str) -> bool:
        """True when ``text`` spells a special token of the vocabulary (``<|im_start|>``, ``<repo_name>``…)."""
        return self.encode(text) != self.encode_plain(text)

    def _split(self, messages: Sequence[Message]) -> list[str] | None:
        """The template's text around the contents (one more piece than messages), or None when the
        template does not write each content exactly once, in order."""
        slots = [f"\x00claimflow-content-{i}\x00" for i in range(len(messages))]
        text = self._render([Message(m.role, slot) for m, slot in zip(messages, slots, strict=True)])
        pieces: list[str] = []
        for slot in slots:
            if text.count(slot) != 1:
                return None
            before, text = text.split(slot)
            pieces.append(before)
        pieces.append(text)
        return pieces

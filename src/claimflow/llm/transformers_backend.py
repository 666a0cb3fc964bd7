"""In-process transformers backend: exact next-token log-probabilities, batched.

This is the path soft prompts and LoRA adapters plug into (they need a torch model). Prompts are
rendered with the tokenizer's chat template; label words are scored as exact token sequences.
Special tokens come only from the chat template's own text (:func:`encode_chat`): a message
content that spells ``<|im_start|>`` is tokenized as those characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from claimflow.errors import BackendUnavailableError, ConfigError, ContextLengthError
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, Message, ScoreRequest
from claimflow.llm.tokens import continuation_ids
from claimflow.torch_scope import RngStream, torch_threads
from claimflow.types import ModelProvenance


def chat_text(tokenizer: Any, messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """The prompt as text: the tokenizer's chat template with the assistant turn opened, or a plain layout."""
    chat = [{"role": m.role, "content": m.content} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n\n".join(m.content for m in messages) + "\n"
    return str(text) + assistant_prefix


def _tokens(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"])


def encode_chat(tokenizer: Any, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
    """Tokens of :func:`chat_text` where only the chat template's own text yields special tokens.

    When no content (nor the prefix) spells a special token, these are the whole prompt's tokens;
    otherwise the chat is rendered with a placeholder per content, the template's text is tokenized
    with special tokens and each content as plain text.
    """
    untrusted = [m.content for m in messages] + [assistant_prefix]
    spelled = [t for t in untrusted if _tokens(tokenizer, t, special=True) != _tokens(tokenizer, t, special=False)]
    if not getattr(tokenizer, "chat_template", None) or not spelled:
        return _tokens(tokenizer, chat_text(tokenizer, messages, assistant_prefix), special=not spelled)
    slots = [f"\x00claimflow-content-{i}\x00" for i in range(len(messages))]
    text = chat_text(tokenizer, [Message(m.role, slot) for m, slot in zip(messages, slots, strict=True)])
    if any(text.count(slot) != 1 for slot in slots):  # the template rewrites contents: none may be special
        return _tokens(tokenizer, chat_text(tokenizer, messages, assistant_prefix), special=False)
    tokens: list[int] = []
    for message, slot in zip(messages, slots, strict=True):
        before, text = text.split(slot)
        tokens += _tokens(tokenizer, before, special=True) + _tokens(tokenizer, message.content, special=False)
    return tokens + _tokens(tokenizer, text, special=True) + _tokens(tokenizer, assistant_prefix, special=False)


def check_device(torch: Any, device: str) -> None:
    """Fail at construction, naming the setting, when ``device`` is not one this torch can use
    (torch itself would only fail at the first ``.to(device)``, with an assertion about its build)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"backends: device {device!r} is not a torch device: use cpu, cuda, cuda:N or mps") from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"backends: device {device!r} needs a CUDA GPU, and this torch {torch.__version__} sees none "
                "(a CPU-only build, or no GPU/driver): set device: cpu"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"backends: device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise BackendUnavailableError(
                f"backends: device {device!r} needs Apple's Metal (MPS), which this torch {torch.__version__} "
                "cannot use here: set device: cpu"
            )


class TransformersBackend(Backend):
    kind = "transformers"

    def __init__(
        self,
        model_path: str,
        *,
        model_id: str | None = None,
        sha256: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        context_length: int = 2048,
        threads: int | None = None,
        seed: int = 0,
        batch_size: int = 8,
    ) -> None:
        super().__init__(model_id or model_path)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailableError("the transformers backend needs: pip install 'claimflow[train]'") from exc
        check_device(torch, device)
        self.threads = threads  # set around this backend's own forward passes only (torch_scope)
        self._rng = RngStream(seed)
        self._torch = torch
        self.sha256 = sha256
        self.device = device
        self.batch_size = batch_size
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_path)
            model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
            self.model = model.to(device)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot load {model_path!r} with transformers: {exc}. Offline, use a store name or a local folder."
            ) from exc
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        limit = getattr(self.model.config, "max_position_embeddings", None) or context_length
        self.capabilities = Capabilities(logprobs=True, context_length=min(context_length, limit))

    # --- prompts ----------------------------------------------------------------------------------

    def prompt_text(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        return chat_text(self.tokenizer, messages, assistant_prefix)

    def encode(self, text: str) -> list[int]:
        """Tokens of text the backend wrote itself (special-token strings become special tokens);
        prompts go through :meth:`encode_chat`."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_chat(self, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
        return encode_chat(self.tokenizer, messages, assistant_prefix)

    def _check_length(self, n_tokens: int, extra: int) -> None:
        limit = self.capabilities.context_length or 0
        if n_tokens + extra > limit:
            raise ContextLengthError(
                f"the prompt has {n_tokens} tokens (+{extra} to generate), more than the context of {limit}: "
                "shorten the claim or evidence, or raise context_length"
            )

    # --- forward passes ---------------------------------------------------------------------------

    def _forward(self, sequences: list[list[int]]) -> Any:
        """Log-softmax over the vocabulary at every position of left-padded ``sequences``."""
        torch = self._torch
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch_threads(self.threads), torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        self.stats.forward_passes += 1
        return torch.log_softmax(logits.float(), dim=-1), width

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        results: list[dict[str, float]] = []
        for start in range(0, len(requests), self.batch_size):
            results += self._score_batch(requests[start : start + self.batch_size])
        return results

    def _score_batch(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        prompts = []
        conts: list[dict[str, list[int]]] = []
        for request in requests:
            text = self.prompt_text(request.messages, request.assistant_prefix)
            ids = self.encode_chat(request.messages, request.assistant_prefix)
            cands = {c: continuation_ids(self.encode, text, ids, c) for c in request.candidates}
            self._check_length(len(ids), max(len(v) for v in cands.values()))
            prompts.append(ids)
            conts.append(cands)
        self.stats.calls += len(requests)
        logprobs, width = self._forward(prompts)
        results = [{c: float(logprobs[i, -1, toks[0]]) for c, toks in cands.items()} for i, cands in enumerate(conts)]
        # multi-token words: one more batched pass over prompt + word
        extra = [
            (i, c, prompts[i] + toks) for i, cands in enumerate(conts) for c, toks in cands.items() if len(toks) > 1
        ]
        if extra:
            full, full_width = self._forward([seq for _, _, seq in extra])
            for row, (i, cand, seq) in enumerate(extra):
                n = len(conts[i][cand])
                offset = full_width - len(seq)  # left padding
                total = 0.0
                for k in range(n):
                    pos = offset + len(prompts[i]) + k - 1
                    total += float(full[row, pos, seq[len(prompts[i]) + k]])
                results[i][cand] = total
        del width
        return results

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        out = []
        for request in requests:  # greedy, one at a time: exact and simple on CPU
            ids = self.encode_chat(request.messages, request.assistant_prefix)
            self._check_length(len(ids), request.max_tokens)
            torch = self._torch
            input_ids = torch.tensor([ids], device=self.device)
            sampling: dict[str, Any] = {"do_sample": False, "repetition_penalty": request.repetition_penalty}
            if request.temperature > 0:
                sampling.update(do_sample=True, temperature=request.temperature)
            with torch_threads(self.threads), self._rng.use(), torch.inference_mode():
                generated = self.model.generate(
                    input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    max_new_tokens=request.max_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            new = generated[0, len(ids) :].tolist()
            completion = str(self.tokenizer.decode(new, skip_special_tokens=True))
            for stop in request.stop:
                completion = completion.split(stop)[0]
            self.stats.calls += 1
            self.stats.forward_passes += len(new)
            self.stats.prompt_tokens += len(ids)
            self.stats.completion_tokens += len(new)
            out.append(
                Generation(completion, len(ids), len(new), "length" if len(new) >= request.max_tokens else "stop")
            )
        return out

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend=self.kind, model=self.model_id, sha256=self.sha256)

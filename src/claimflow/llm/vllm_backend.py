"""In-process vLLM backend (optional: ``pip install 'claimflow[vllm]'``, needs a supported GPU).

Label words are scored exactly: each prompt + candidate is submitted with ``prompt_logprobs`` and
the candidate tokens' log-probabilities are summed; vLLM's automatic prefix caching shares the
prompt between candidates. Not exercised by the test suite (no GPU on the CI machines).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from claimflow.errors import BackendUnavailableError
from claimflow.llm.base import Backend, Capabilities, Generation, GenRequest, Message, ScoreRequest
from claimflow.llm.tokens import continuation_ids


class VLLMBackend(Backend):
    kind = "vllm"

    def __init__(self, model: str, *, model_id: str | None = None, context_length: int = 2048, seed: int = 0) -> None:
        super().__init__(model_id or model)
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise BackendUnavailableError("the vllm backend needs: pip install 'claimflow[vllm]' (and a GPU)") from exc
        self._sampling_params = SamplingParams
        self.llm = LLM(model=model, max_model_len=context_length, seed=seed, enable_prefix_caching=True)
        self.tokenizer = self.llm.get_tokenizer()
        self.capabilities = Capabilities(logprobs=True, context_length=context_length)

    def _prompt(self, messages: Sequence[Message], prefix: str) -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)) + prefix

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        prompts: list[Any] = [
            {"prompt_token_ids": self._encode(self._prompt(r.messages, r.assistant_prefix))} for r in requests
        ]
        params = [
            self._sampling_params(
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                stop=list(r.stop) or None,
                seed=r.seed,
                repetition_penalty=r.repetition_penalty,
            )
            for r in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        self.stats.calls += len(requests)
        result = []
        for prompt, output in zip(prompts, outputs, strict=True):
            completion = output.outputs[0]
            self.stats.forward_passes += len(completion.token_ids)
            result.append(
                Generation(
                    completion.text,
                    len(prompt["prompt_token_ids"]),
                    len(completion.token_ids),
                    completion.finish_reason,
                )
            )
        return result

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        jobs: list[tuple[int, str, int, list[int]]] = []
        for i, request in enumerate(requests):
            text = self._prompt(request.messages, request.assistant_prefix)
            ids = self._encode(text)
            for cand in request.candidates:
                jobs.append((i, cand, len(ids), ids + continuation_ids(self._encode, text, ids, cand)))
        params = self._sampling_params(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outputs = self.llm.generate([{"prompt_token_ids": seq} for *_, seq in jobs], params, use_tqdm=False)
        self.stats.calls += len(requests)
        self.stats.forward_passes += len(jobs)
        results: list[dict[str, float]] = [{} for _ in requests]
        for (i, cand, n_prompt, seq), output in zip(jobs, outputs, strict=True):
            plp = output.prompt_logprobs
            results[i][cand] = sum(plp[pos][seq[pos]].logprob for pos in range(n_prompt, len(seq)))
        return results

"""Soft-prompt classifier: a causal LM with a trained prompt-tuning adapter (PEFT) and a verbalizer.

The same :class:`SoftPromptCodec` builds the inputs at training and at inference: the template is
rendered, the chat template applied, the claim cut to ``max_claim_tokens``; the label is read from
the next-token logits of each label's first word at the last position (right padding keeps the
positions of the virtual tokens and the text identical in a batch and alone).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.llm.base import BackendStats
from claimflow.llm.tokens import continuation_ids
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import quiet_transformers
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate
from claimflow.torch_scope import torch_threads
from claimflow.types import LabelScores, ModelProvenance


@dataclass
class SoftPromptCodec:
    """Template inputs -> token ids (chat template applied), and the label words' first token ids.

    The inputs' text is cut to ``max_claim_tokens`` tokens in all, split between the template's
    inputs by water-filling (for a one-input template: the claim cut to that many tokens).
    ``labels`` restricts the label set (default: all of the template's labels, in its order).
    """

    tokenizer: Any
    template: PromptTemplate
    max_claim_tokens: int = 96
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.template.label_words:
            raise ModelError(f"{self.template.ref} has no label words")
        unknown = set(self.labels) - set(self.template.labels)
        if unknown:
            raise ModelError(f"{self.template.ref} has no label(s) {sorted(unknown)}")
        self.labels = tuple(self.labels) or self.template.labels
        probe_inputs = {name: "x" for name in self.template.inputs}
        probe = self.prompt_ids(probe_inputs)
        text = self._prompt_text(probe_inputs)
        firsts = {
            label: [continuation_ids(self._encode, text, probe, word)[0] for word in self.template.label_words[label]]
            for label in self.labels
        }
        self.label_token_ids = [firsts[label][0] for label in self.labels]
        if len(set(self.label_token_ids)) < len(self.labels):
            # the labels' first words start alike ("The claim is TRUE" / "... FALSE"): read, per label,
            # its first word whose first token no other label's word starts with
            self.label_token_ids = [_own_token(label, firsts, self.template.ref) for label in self.labels]

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_text(self, inputs: Mapping[str, Any]) -> str:
        rendered = self.template.render(inputs)
        chat = [{"role": m.role, "content": m.content} for m in rendered.messages]
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return str(text) + rendered.assistant_prefix

    def truncate(self, claim: str) -> str:
        return self.truncate_inputs({"claim": claim})["claim"]

    def truncate_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The template's inputs (others dropped) with their text cut to the shared token budget."""
        from claimflow.predictors.encoder import water_fill

        values = {name: inputs[name] for name in self.template.inputs if name in inputs}
        names = [n for n in self.template.inputs if isinstance(values.get(n), str)]
        ids = [self._encode(values[n]) for n in names]
        for name, tokens, keep in zip(
            names, ids, water_fill([len(t) for t in ids], self.max_claim_tokens), strict=True
        ):
            if keep < len(tokens):
                values[name] = str(self.tokenizer.decode(tokens[:keep]))
        return values

    def prompt_ids(self, inputs: Mapping[str, Any]) -> list[int]:
        """Token ids of the rendered prompt; only the chat template's own text yields special tokens."""
        from claimflow.llm.transformers_backend import encode_chat

        rendered = self.template.render(self.truncate_inputs(inputs))
        return encode_chat(self.tokenizer, rendered.messages, rendered.assistant_prefix)


def _own_token(label: str, firsts: Mapping[str, Sequence[int]], ref: str) -> int:
    others = {token for other, tokens in firsts.items() if other != label for token in tokens}
    for token in firsts[label]:
        if token not in others:
            return token
    raise ModelError(f"{ref}: every label word of {label!r} starts with a token another label's words start with")


def batch_logits(model: Any, sequences: Sequence[Sequence[int]], pad_id: int, n_virtual: int) -> Any:
    """Next-token logits at each sequence's last real position (right padding). The LM head runs at
    those positions only (``logits_to_keep``), not over the whole vocabulary at every position."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.tensor([list(s) + [pad_id] * (width - len(s)) for s in sequences])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    last = torch.tensor([n_virtual + len(s) - 1 for s in sequences])
    keep, where = torch.unique(last, return_inverse=True)
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    return logits[torch.arange(len(sequences)), where]


class SoftPromptClassifier:
    """Loads ``artifact`` (a PEFT prompt-tuning adapter folder with ``provenance.json``)."""

    def __init__(
        self,
        artifact: Path,
        *,
        store: ModelStore | None = None,
        registry: TemplateRegistry | None = None,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        try:
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailableError(
                "soft prompts need torch, transformers and peft: pip install 'claimflow[local]'"
            ) from exc
        provenance_path = artifact / "provenance.json"
        if not provenance_path.exists():
            raise ModelError(f"{artifact} is not a soft-prompt artifact (no provenance.json)")
        self.provenance_data: dict[str, Any] = json.loads(provenance_path.read_text(encoding="utf-8"))
        store = store or ModelStore()
        registry = registry or TemplateRegistry()
        base = self.provenance_data["base_model"]
        resolved = store.resolve(base["name"])
        if base.get("sha256") and resolved.sha256 and base["sha256"] != resolved.sha256:
            raise ModelError(f"{artifact} was trained on {base['name']} sha256 {base['sha256']}, not {resolved.sha256}")
        self.threads = threads  # set around this predictor's forward passes only (torch_scope)
        folder = hf_checkpoint(resolved, store)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            self.model: Any = PeftModel.from_pretrained(model, str(artifact)).eval()
        self.template = registry.get(self.provenance_data["template"])
        self.codec = SoftPromptCodec(self.tokenizer, self.template, self.provenance_data["max_claim_tokens"])
        self.n_virtual = int(self.provenance_data["num_virtual_tokens"])
        self.threshold = float(self.provenance_data.get("threshold", 0.5))
        self.batch_size = batch_size
        self.artifact = artifact
        self.model_id = f"{base['name']}+softprompt:{artifact.name}"
        self.stats = BackendStats()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.codec.labels

    def positive_probabilities(self, inputs: Sequence[Mapping[str, Any]]) -> list[float]:
        import torch

        out: list[float] = []
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                seqs = [self.codec.prompt_ids(values) for values in inputs[start : start + self.batch_size]]
                logits = batch_logits(self.model, seqs, pad, self.n_virtual)[:, self.codec.label_token_ids]
                out += torch.softmax(logits.float(), dim=-1)[:, 0].tolist()
                self.stats.calls += len(seqs)
                self.stats.forward_passes += 1
                self.stats.prompt_tokens += sum(len(s) for s in seqs)
        return out

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        """LabelScores over the template's labels (first label = positive), thresholded as trained."""
        positive, negative = self.labels[0], self.labels[1]
        results = []
        for p in self.positive_probabilities(inputs):
            label = positive if p >= self.threshold else negative
            results.append(LabelScores(label=label, probabilities={positive: p, negative: 1.0 - p}))
        return results

    def prompt_embeds(self, inputs: Mapping[str, Any]) -> Any:
        """``[virtual tokens; token embeddings]`` for one input: what an engine that accepts prompt
        embeddings (vLLM's ``{"prompt_embeds": tensor}`` with ``enable_prompt_embeds=True``) needs
        to serve this soft prompt on the plain base model."""
        import torch

        ids = torch.tensor(self.codec.prompt_ids(inputs))
        soft = self.model.get_prompt_embedding_to_save("default")
        tokens = self.model.get_input_embeddings()(ids)
        return torch.cat([soft.to(tokens.dtype), tokens], dim=0).detach()

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees."""

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(
            backend="transformers+peft",
            model=self.model_id,
            source=str(self.artifact),
            sha256=self.provenance_data["base_model"].get("sha256"),
        )

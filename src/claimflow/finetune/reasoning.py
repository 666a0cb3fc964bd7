"""Reasoning datasets and reasoning LoRAs (the LoraMap paper's DifferenceCoT, EntityCoT, CorrectClaim).

Datasets (``claimflow finetune reasoning-data``), one JSONL line per claim
``{id, task, claim, evidence, target, source, fingerprint}``:

- ``correct_claim`` comes from the data: a COVID-Fact claim's target is the dataset's true claim for the
  same evidence (the paper's construction). The pairing reads gold labels, but only to build training
  targets; the prompt (``reasoning_correct_claim@1``) shows the claim and its evidence only.
- ``difference_cot`` / ``entity_cot`` are written by a teacher model through any backend (a configured
  llama.cpp model, an OpenAI-compatible server) from the paper's label-free instructions. The file is
  resumable (finished ids are skipped) and pinned to one teacher and template: the ``fingerprint`` of
  the first line must match, so a changed teacher never mixes into a file.

A reasoning LoRA (``claimflow finetune reasoning-lora -c FILE``) is a PEFT LoRA on a causal LM trained
with the sequence-to-sequence loss on the target tokens only, on the resumable loop; its ``best/`` is a
plain PEFT adapter folder, so it is a source for :mod:`claimflow.finetune.compose`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from claimflow.errors import InputError
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainerSetup,
    TrainingConfig,
    save_best_model,
    write_artifact_provenance,
)
from claimflow.io import iter_jsonl, prepare_output
from claimflow.models.store import ModelStore

__all__ = [
    "TASK_TEMPLATES",
    "ReasoningLoraConfig",
    "ReasoningLoraTrainer",
    "ReasoningTask",
    "correct_claim_rows",
    "teacher_rows",
    "write_rows",
]

ReasoningTask = Literal["correct_claim", "difference_cot", "entity_cot"]
TASK_TEMPLATES: dict[str, str] = {
    "correct_claim": "reasoning_correct_claim@1",
    "difference_cot": "reasoning_difference_cot@1",
    "entity_cot": "reasoning_entity_cot@1",
}


def correct_claim_rows(split: str, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """COVID-Fact CorrectClaim pairs: every claim whose evidence also carries a true claim, with that true
    claim as its target (a true claim's target is itself)."""
    from claimflow.evals.datasets import load_dataset

    examples = load_dataset("covidfact", split, data_dir)
    true_claims: dict[tuple[str, ...], str] = {}
    for ex in examples:
        if ex.label == "SUPPORTED":
            true_claims.setdefault(tuple(ex.evidence), ex.claim)
    rows = []
    for ex in examples:
        target = true_claims.get(tuple(ex.evidence))
        if target is not None:
            rows.append(
                {
                    "id": ex.id,
                    "task": "correct_claim",
                    "claim": ex.claim,
                    "evidence": list(ex.evidence),
                    "target": target,
                    "source": "data:covidfact",
                }
            )
    return rows


def _fingerprint(template_ref: str, model: str) -> str:
    return hashlib.sha256(f"{template_ref}|{model}".encode()).hexdigest()[:16]


def teacher_rows(
    task: ReasoningTask,
    examples: Iterable[Any],
    backend: Any,
    *,
    out: Path,
    registry: Any = None,
    max_tokens: int = 256,
    on_row: Callable[[str], None] | None = None,
) -> int:
    """Append the teacher's ``task`` output for each example (``id``, ``claim``, ``evidence``) to ``out``,
    skipping ids already there; returns how many were written. The prompt never holds a label."""
    from claimflow.batch import done_ids, repair_tail
    from claimflow.llm.base import GenRequest
    from claimflow.prompts.registry import TemplateRegistry

    if task == "correct_claim":
        raise InputError("correct_claim targets come from the data (correct_claim_rows), not from a teacher")
    template = (registry or TemplateRegistry()).get(TASK_TEMPLATES[task])
    model = backend.provenance()
    fingerprint = _fingerprint(template.ref, f"{model.model}#{model.sha256}")
    prepare_output(out)
    repair_tail(out)
    for _, record in iter_jsonl(str(out)) if out.exists() else ():
        if record.get("fingerprint") != fingerprint:
            raise InputError(
                f"{out} holds {record.get('task')} rows of another teacher or template "
                f"(fingerprint {record.get('fingerprint')}, now {fingerprint}): write to a new file"
            )
        break
    finished = done_ids(out)
    written = 0
    with out.open("a", encoding="utf-8") as handle:
        for ex in examples:
            if ex.id in finished:
                continue
            rendered = template.render({"claim": ex.claim, "evidence": list(ex.evidence)})
            request = GenRequest(rendered.messages, max_tokens=max_tokens, assistant_prefix=rendered.assistant_prefix)
            text = backend.generate([request])[0].text.strip()
            line = {
                "id": ex.id,
                "task": task,
                "claim": ex.claim,
                "evidence": list(ex.evidence),
                "target": text,
                "source": f"teacher:{model.model}",
                "template": template.ref,
                "fingerprint": fingerprint,
            }
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            written += 1
            if on_row:
                on_row(ex.id)
    return written


def write_rows(rows: Sequence[dict[str, Any]], out: Path) -> None:
    """Write data-derived rows (CorrectClaim) in one go."""
    from claimflow.io import write_output

    write_output(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


class ReasoningLoraConfig(TrainingConfig):
    """A reasoning-LoRA run (YAML, unknown keys refused)."""

    output_dir: Path
    data_file: Path = Field(..., description="JSONL from `claimflow finetune reasoning-data`")
    task: ReasoningTask
    base_model: str = "smollm2-135m-instruct"
    template: str | None = Field(None, description="default: the task's template")
    max_input_tokens: int = Field(256, ge=16)
    max_target_tokens: int = Field(128, ge=1)
    dev_fraction: float = Field(0.1, gt=0, lt=1)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    training: LoopSettings = LoopSettings(batch_size=4, eval_batch_size=8, learning_rate=5e-4)
    threads: int | None = None


class ReasoningLoraTrainer:
    def __init__(self, config: ReasoningLoraConfig, *, store: ModelStore | None = None) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from claimflow.models.convert import hf_checkpoint
        from claimflow.predictors.encoder import quiet_transformers
        from claimflow.prompts.registry import TemplateRegistry

        self.config, self.torch = config, torch
        rows = [r for _, r in iter_jsonl(str(config.data_file)) if r.get("task") == config.task and r.get("target")]
        if len(rows) < 2:
            raise InputError(f"{config.data_file}: fewer than two {config.task} rows with a target")
        order = list(range(len(rows)))
        random.Random(config.training.seed).shuffle(order)
        n_dev = max(1, round(len(rows) * config.dev_fraction))
        self.dev_rows = [rows[i] for i in order[:n_dev]]
        self.train_rows = [rows[i] for i in order[n_dev:]]
        self.setup = TrainerSetup.prepare(
            config.base_model, config.output_dir, threads=config.threads, seed=config.training.seed, store=store
        )
        self.out = self.setup.output_dir
        folder = hf_checkpoint(self.setup.base, self.setup.store)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.template = TemplateRegistry().get(config.template or TASK_TEMPLATES[config.task])
        self._prompt = _PromptEncoder(self.tokenizer, self.template, config.max_input_tokens)
        with self.setup.building(), quiet_transformers():
            base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            self.model: Any = get_peft_model(
                base,
                LoraConfig(
                    task_type="CAUSAL_LM",
                    r=config.lora_r,
                    lora_alpha=config.lora_alpha,
                    lora_dropout=config.lora_dropout,
                    target_modules=list(config.lora_targets),
                ),
            )

    def encode(self, row: dict[str, Any]) -> tuple[list[int], list[int]]:
        """Prompt ids and target ids (the target cut to ``max_target_tokens``, then end-of-sequence)."""
        prompt = self._prompt.ids({"claim": row["claim"], "evidence": list(row["evidence"])})
        target = list(self.tokenizer(row["target"], add_special_tokens=False)["input_ids"])
        eos = self.tokenizer.eos_token_id
        return prompt, target[: self.config.max_target_tokens] + ([eos] if eos is not None else [])

    def sequence_loss(self, pairs: Sequence[tuple[list[int], list[int]]]) -> Any:
        """Mean cross-entropy over the target tokens only (prompt and padding masked with -100)."""
        torch = self.torch
        seqs = [p + t for p, t in pairs]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        labels = torch.tensor([[-100] * len(p) + t + [-100] * (width - len(p) - len(t)) for p, t in pairs])
        return self.model(input_ids=ids, attention_mask=mask, labels=labels).loss

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train (or resume); ``output_dir/best`` is a PEFT adapter folder with ``provenance.json``."""
        from claimflow.predictors.encoder import base_model_record

        train = [self.encode(r) for r in self.train_rows]
        dev = [self.encode(r) for r in self.dev_rows]
        size = self.config.training.eval_batch_size

        def evaluate() -> dict[str, Any]:
            self.model.eval()
            with self.torch.inference_mode():
                losses = [float(self.sequence_loss(dev[i : i + size]).item()) for i in range(0, len(dev), size)]
            self.model.train()
            loss = sum(losses) / len(losses)
            return {"score": -loss, "metric": "negative_target_loss", "dev_loss": loss}

        t0 = time.perf_counter()
        loop = ResumableLoop(self.model, self.config.training, self.out, threads=self.setup.threads)
        summary = loop.run(
            len(train),
            lambda indices: self.sequence_loss([train[i] for i in indices]),
            evaluate,
            lambda metrics: save_best_model(self.model, self.out, metrics),
            on_step,
        )
        summary["wall_seconds_this_process"] = round(time.perf_counter() - t0, 1)
        fields = {
            "kind": "reasoning_lora",
            "task": self.config.task,
            "template": self.template.ref,
            "base_model": base_model_record(self.setup.base),
            "data_file_sha256": hashlib.sha256(self.config.data_file.read_bytes()).hexdigest(),
        }
        write_artifact_provenance(
            self.out,
            fields,
            config=self.config,
            summary=summary,
            command="reasoning-lora",
            after_training={"train_size": len(train), "dev_size": len(dev)},
            gold_labels_in_inputs=False,
        )
        return summary


class _PromptEncoder:
    """A generate template's prompt as token ids (chat template applied), inputs cut to a shared budget."""

    def __init__(self, tokenizer: Any, template: Any, max_tokens: int) -> None:
        self.tokenizer, self.template, self.max_tokens = tokenizer, template, max_tokens

    def ids(self, inputs: dict[str, Any]) -> list[int]:
        from claimflow.llm.transformers_backend import encode_chat

        evidence = list(inputs["evidence"])
        budget = self.max_tokens
        kept: list[str] = []
        claim_ids = self.tokenizer(inputs["claim"], add_special_tokens=False)["input_ids"][: budget // 2]
        claim = str(self.tokenizer.decode(claim_ids))
        used = len(claim_ids)
        for sentence in evidence:  # whole sentences while they fit, then the rest of one cut short
            n = len(self.tokenizer(sentence, add_special_tokens=False)["input_ids"])
            if used + n > budget:
                room = budget - used
                if room > 8:
                    cut = self.tokenizer(sentence, add_special_tokens=False)["input_ids"][:room]
                    kept.append(str(self.tokenizer.decode(cut)))
                break
            kept.append(sentence)
            used += n
        rendered = self.template.render({"claim": claim, "evidence": kept})
        return encode_chat(self.tokenizer, rendered.messages, rendered.assistant_prefix)

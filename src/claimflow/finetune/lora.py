"""LoRA on a causal LM for a classification task, with a CLM head or a CLS head (the multi-task paper's comparison).

Both heads read the same input: a registry template (default ``veracity_justifications@1``)
rendered with the task's fields (claim and justifications for veracity), the chat template applied,
the fields cut to a shared token budget. With ``stance_pairs`` set, the rows are the multi-task
evidence model's stance pairs instead (:func:`claimflow.finetune.multitask_data.build_splits`:
(claim, sentence) -> SUPPORT / REFUTE / NEUTRAL, the same train items and held-out claims as the
encoder), read through a stance template such as ``evidence_stance_3way@1``.

- ``clm``: the label words' first-token logits at the answer position (after the template's
  ``Claim Veracity:`` prefix), cross-entropy over the dataset's labels: the verbalizer is the head.
- ``cls``: a linear layer on the last token's hidden state (``AutoModelForSequenceClassification``),
  trained with the adapter.

Same training loop as the encoder (:mod:`claimflow.finetune.loop`: class weights, early stopping on
dev macro-F1, checkpoints, resume after a crash), same data (:func:`claimflow.finetune.classifier.load_rows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from claimflow.errors import InputError
from claimflow.finetune.classifier import ClassifierData, Row, label_set, load_rows, require_fields
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainerSetup,
    TrainingConfig,
    class_weights,
    save_best_model,
    write_artifact_provenance,
)
from claimflow.finetune.multitask_data import MultitaskData, TaskExample, build_splits
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import quiet_transformers
from claimflow.predictors.soft_prompt import SoftPromptCodec, batch_logits
from claimflow.prompts.registry import TemplateRegistry
from claimflow.torch_scope import torch_threads


class CausalLoraConfig(TrainingConfig):
    """A LoRA run on a causal LM: veracity rows, or the evidence stance pairs (YAML, unknown keys refused)."""

    output_dir: Path
    head: Literal["clm", "cls"] = "cls"
    base_model: str = "smollm2-135m-instruct"
    template: str = "veracity_justifications@1"
    max_input_tokens: int = Field(256, ge=16, description="claim + justifications, shared by water-filling")
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    class_weights: Literal["balanced", "none"] = "balanced"
    data: ClassifierData = ClassifierData()
    stance_pairs: MultitaskData | None = Field(
        None,
        description="train on the multi-task evidence data's stance pairs (claim, sentence) instead of data; "
        "dev: its early-stopping sample of the held-out HealthVer / Climate-FEVER parts and SciFact dev",
    )
    training: LoopSettings = LoopSettings(batch_size=8, eval_batch_size=16, learning_rate=5e-4)
    threads: int | None = None


def pair_rows(items: Sequence[TaskExample]) -> list[Row]:
    """Stance pairs as trainer rows: ``claim`` and ``sentence`` fields, the stance label."""
    return [
        (f"{item.source}:{item.group}:{n}", {"claim": item.text_a, "sentence": item.text_b or ""}, item.label)
        for n, item in enumerate(items)
    ]


class CausalLoraModel:
    """A causal LM + LoRA adapter with a CLM or CLS head; trains (resumably) and predicts."""

    def __init__(self, config: CausalLoraConfig, labels: Sequence[str], *, store: ModelStore | None = None) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        self.config, self.torch = config, torch
        self.setup = TrainerSetup.prepare(
            config.base_model, config.output_dir, threads=config.threads, seed=config.training.seed, store=store
        )
        self.store, self.base = self.setup.store, self.setup.base
        folder = hf_checkpoint(self.base, self.store)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.template = TemplateRegistry().get(config.template)
        self.labels = tuple(labels)
        self.codec = SoftPromptCodec(self.tokenizer, self.template, config.max_input_tokens, self.labels)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        with self.setup.building(), quiet_transformers():  # the new head's "newly initialized" report too
            if config.head == "cls":
                model = AutoModelForSequenceClassification.from_pretrained(
                    folder, num_labels=len(self.labels), dtype=torch.float32
                )
                model.config.pad_token_id = self.pad_id
                task = "SEQ_CLS"
            else:
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
                task = "CAUSAL_LM"
            lora = LoraConfig(
                task_type=task,
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(config.lora_targets),
            )
            self.model: Any = get_peft_model(model, lora)

    def encode(self, rows: Sequence[Row]) -> list[list[int]]:
        return [self.codec.prompt_ids(fields) for _, fields, _ in rows]

    def logits(self, sequences: Sequence[Sequence[int]]) -> Any:
        """Label logits, one row per sequence (right padding; the last real token is read)."""
        torch = self.torch
        if self.config.head == "clm":
            return batch_logits(self.model, sequences, self.pad_id, 0)[:, self.codec.label_token_ids]
        width = max(len(s) for s in sequences)
        ids = torch.tensor([list(s) + [self.pad_id] * (width - len(s)) for s in sequences])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        hidden = self.model.base_model.model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        last = hidden[torch.arange(len(sequences)), torch.tensor([len(s) - 1 for s in sequences])]
        return self.model.base_model.model.score(last)

    def load_adapter(self, folder: Path) -> None:
        """Load a saved adapter (and CLS head) of this run into the model, in eval mode."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(folder / "adapter_model.safetensors")))
        self.model.eval()

    def predict(self, sequences: Sequence[Sequence[int]], batch_size: int) -> list[list[float]]:
        torch = self.torch
        out: list[list[float]] = []
        with torch_threads(self.setup.threads), torch.inference_mode():
            for start in range(0, len(sequences), batch_size):
                logits = self.logits(sequences[start : start + batch_size])
                out += torch.softmax(logits.float(), dim=-1).tolist()
        return out


class CausalLoraTrainer:
    def __init__(self, config: CausalLoraConfig, *, store: ModelStore | None = None) -> None:
        data, seed = config.data, config.training.seed
        self.config = config
        self.held_out_claims: dict[str, list[str]] = {}
        if config.stance_pairs is not None:
            splits = build_splits(config.stance_pairs, ["stance"], seed)
            self.train_rows, self.dev_rows = pair_rows(splits.train["stance"]), pair_rows(splits.dev["stance"])
            self.held_out_claims = splits.held_out_claims
            seen = {label for *_, label in self.train_rows}
            labels: tuple[str, ...] = tuple(label for label in ("SUPPORT", "REFUTE", "NEUTRAL") if label in seen)
        else:
            self.train_rows = load_rows(data, data.train_split, data.train_file, data.train_sample, seed)
            self.dev_rows = load_rows(data, data.dev_split, data.dev_file, data.dev_sample, seed)
            labels = label_set(data.task, self.train_rows)
        if len(labels) < 2:
            raise InputError(f"training data has fewer than two labels: {labels}")
        self.net = CausalLoraModel(config, labels, store=store)
        require_fields(self.train_rows, self.net.template.inputs, "train")
        require_fields(self.dev_rows, self.net.template.inputs, "dev")
        self.out = self.net.setup.output_dir

    def _save_best(self, metrics: dict[str, Any]) -> None:
        save_best_model(self.net.model, self.out, metrics)

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        from claimflow.evals.metrics import macro_f1

        net, torch = self.net, self.net.torch
        labels = net.labels
        index = {label: i for i, label in enumerate(labels)}
        train = net.encode(self.train_rows)
        dev = net.encode(self.dev_rows)
        targets = torch.tensor([index[label] for *_, label in self.train_rows])
        counts = torch.bincount(targets, minlength=len(labels)).float()
        weights = class_weights(counts, self.config.class_weights)
        dev_gold = [label for *_, label in self.dev_rows]
        metric = macro_f1(labels)

        def batch_loss(indices: Sequence[int]) -> Any:
            logits = net.logits([train[i] for i in indices])
            return torch.nn.functional.cross_entropy(logits, targets[list(indices)], weight=weights)

        def evaluate() -> dict[str, Any]:
            probs = net.predict(dev, self.config.training.eval_batch_size)
            preds = [labels[max(range(len(p)), key=p.__getitem__)] for p in probs]
            return {"score": metric(dev_gold, preds), "metric": "macro_f1"}

        t0 = time.perf_counter()
        summary = ResumableLoop(net.model, self.config.training, self.out, threads=net.setup.threads).run(
            len(train), batch_loss, evaluate, self._save_best, on_step
        )
        summary.update(
            train_size=len(train),
            dev_size=len(dev),
            label_counts=dict(zip(labels, counts.int().tolist(), strict=True)),
            mean_input_tokens=round(sum(len(s) for s in train) / max(len(train), 1), 1),
            wall_seconds_this_process=round(time.perf_counter() - t0, 1),
        )
        self._write_provenance(summary)
        return summary

    def _write_provenance(self, summary: dict[str, Any]) -> None:
        net = self.net
        fields: dict[str, Any] = {
            "kind": "causal_lora_classifier",
            "head": self.config.head,
            "base_model": {"name": net.base.name, "sha256": net.base.sha256, "source": net.base.source},
            "template": net.template.ref,
            "labels": list(net.labels),
            "max_input_tokens": self.config.max_input_tokens,
        }
        if self.held_out_claims:
            fields["data"] = {"held_out_claims": self.held_out_claims}
        write_artifact_provenance(self.out, fields, config=self.config, summary=summary, command="lora")

    def load_best(self) -> CausalLoraModel:
        """The model with the best adapter of this run loaded, in eval mode."""
        self.net.load_adapter(self.out / "best")
        return self.net

    def evaluate_best(self, split: str, file: Path | None) -> dict[str, Any]:
        """Macro-F1 with a bootstrap CI and throughput of the best adapter on ``split``."""
        from claimflow.evals.metrics import classification_metrics, macro_f1
        from claimflow.evals.stats import bootstrap_ci

        if self.config.stance_pairs is not None:
            raise InputError("a stance-pairs run is scored by benchmarks/evidence_model.py (score --causal-lora)")
        net = self.load_best()
        rows = load_rows(self.config.data, split, file, None, self.config.training.seed)
        require_fields(rows, net.template.inputs, split)
        start = time.perf_counter()
        probs = net.predict(net.encode(rows), self.config.training.eval_batch_size)
        seconds = time.perf_counter() - start
        labels = net.labels
        preds = [labels[max(range(len(p)), key=p.__getitem__)] for p in probs]
        gold = [label for *_, label in rows]
        metric = macro_f1(labels)
        low, high = bootstrap_ci(gold, preds, metric)
        return {
            "split": split,
            "n": len(rows),
            "metric": "macro_f1",
            "value": metric(gold, preds),
            "ci95": [low, high],
            "accuracy": classification_metrics(gold, preds, labels).accuracy,
            "seconds": round(seconds, 2),
            "items_per_second": round(len(rows) / seconds, 2) if seconds else None,
            "ids": [i for i, _, _ in rows],
            "predictions": preds,
        }

"""Fine-tune an encoder classifier (MiniLM-L6 by default; any HF encoder) on chosen input fields.

Veracity (the entailed-justification method): ``claim`` + ``support_justification`` +
``refute_justification`` read from a distilled file (:mod:`claimflow.finetune.distill`), with the
gold labels joined by id from the dataset only here, at training time. The paper's ablations are
other ``inputs``: without the supporting or the refuting justification, or ``claim`` + ``evidence``.
Check-worthiness: ``inputs: [claim]`` on CheckThat! 2024.

Full fine-tuning or LoRA (PEFT; the adapter and the classification head are a few hundred kB, small
enough to ship). Class weights, early stopping on dev macro-F1, checkpoints and resume after a crash
(:class:`~claimflow.finetune.loop.ResumableLoop`), a provenance file. Never tuned on a test split.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from claimflow.errors import InputError
from claimflow.evals.labels import TASK_LABELS, Task, label_map
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainerSetup,
    TrainingConfig,
    class_weights,
    save_best_model,
    write_artifact_provenance,
)
from claimflow.io import iter_jsonl
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import (
    FIELDS,
    FieldEncoder,
    apply_encoder_init,
    base_model_record,
    encoder_init_record,
    load_encoder_model,
    quiet_transformers,
)
from claimflow.predictors.stance_summary import stance_summary_of_row
from claimflow.types import StrictModel

log = logging.getLogger(__name__)

Row = tuple[str, dict[str, Any], str]
"""(id, input fields, gold label on the task's label set)."""


class ClassifierSource(StrictModel):
    """Another dataset split mixed into training or dev, its labels mapped onto the same task.

    ``split`` may be ``train_part`` / ``dev_part`` for Climate-FEVER (the multi-task data's by-claim
    split); ``file`` (e.g. evidence ranked as the pipeline ranks it, :mod:`claimflow.finetune.ranked_evidence`)
    replaces the fields it holds and limits the rows to its ids."""

    dataset: str
    split: str
    file: Path | None = None
    sample: int | None = Field(None, ge=1)


class ClassifierData(StrictModel):
    dataset: str = "covidfact"
    task: Task = "veracity"
    train_split: str = "train"
    dev_split: str = "dev"
    train_file: Path | None = Field(None, description="distilled JSONL joined by id (justifications)")
    dev_file: Path | None = None
    train_sample: int | None = Field(None, ge=1)
    dev_sample: int | None = Field(None, ge=1)
    data_dir: Path | None = None
    extra_train: tuple[ClassifierSource, ...] = Field((), description="more sources mixed into training")
    extra_dev: tuple[ClassifierSource, ...] = Field((), description="more sources pooled into the dev metric")


class ClassifierConfig(TrainingConfig):
    """An encoder-classifier training run (YAML, unknown keys refused)."""

    output_dir: Path
    base_model: str = "minilm-l6"
    inputs: tuple[str, ...] = ("claim", "support_justification", "refute_justification")
    max_length: int = Field(256, ge=16)
    mode: Literal["full", "lora"] = "full"
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ("query", "value")
    class_weights: Literal["balanced", "none"] = "balanced"
    init_from: Path | None = Field(
        None,
        description="a multi-task evidence-model artifact (a compact full fine-tune) whose encoder starts this "
        "one, so its stance training carries over; the artifact then needs it at load time",
    )
    data: ClassifierData = ClassifierData()
    training: LoopSettings = LoopSettings()
    threads: int | None = None


def _distilled(path: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for _, record in iter_jsonl(str(path)):
        if "error" not in record and "id" in record:
            rows[str(record["id"])] = record
    return rows


def load_rows(
    data: ClassifierData, split: str, file: Path | None, sample: int | None, seed: int, *, dataset: str | None = None
) -> list[Row]:
    """Inputs (from ``file`` when given, else the dataset) with gold labels from the dataset, joined by id.

    With a file, only its ids are used (a distilled sample); items whose gold label the task's map
    excludes are dropped. ``dataset`` overrides ``data.dataset`` (an extra source).
    """
    from claimflow.finetune.ranked_evidence import claims_of

    name = dataset or data.dataset
    mapping = label_map(name, data.task)
    examples = claims_of(name, split, data.data_dir)
    distilled = _distilled(file) if file is not None else None
    rows: list[Row] = []
    for ex in examples:
        gold = mapping(ex.label)
        if gold is None:
            continue
        fields: dict[str, Any] = {"claim": ex.claim, "evidence": list(ex.evidence)}
        if distilled is not None:
            record = distilled.get(ex.id)
            if record is None:
                continue
            fields.update({k: record[k] for k in FIELDS if k in record})
            summary = stance_summary_of_row(record)
            if summary is not None and "stance_summary" not in record:
                fields["stance_summary"] = summary
        rows.append((ex.id, fields, gold))
    if distilled is not None and not rows:
        raise InputError(f"{file}: no line matches an id of {name}/{split}")
    if sample is not None and sample < len(rows):
        rows = random.Random(seed).sample(rows, sample)
    return rows


def all_rows(data: ClassifierData, which: Literal["train", "dev"], seed: int) -> list[Row]:
    """The main dataset's rows of ``which`` and those of its extra sources (ids prefixed ``dataset:``)."""
    if which == "train":
        rows = load_rows(data, data.train_split, data.train_file, data.train_sample, seed)
        extras = data.extra_train
    else:
        rows = load_rows(data, data.dev_split, data.dev_file, data.dev_sample, seed)
        extras = data.extra_dev
    for source in extras:
        more = load_rows(data, source.split, source.file, source.sample, seed, dataset=source.dataset)
        rows += [(f"{source.dataset}:{item_id}", fields, gold) for item_id, fields, gold in more]
    return rows


def present_labels(labels: Sequence[str], gold: Sequence[str]) -> list[str]:
    """``labels`` that occur in ``gold``: macro-F1 over a set without NOT_ENOUGH_INFO ignores that class."""
    seen = set(gold)
    return [label for label in labels if label in seen]


def require_fields(rows: Sequence[Row], fields: Sequence[str], where: str) -> None:
    """Every row carries every field (justifications come from a distilled file: data.*_file)."""
    for item_id, values, _ in rows:
        missing = [f for f in fields if f not in values]
        if missing:
            raise InputError(
                f"{where}: item {item_id} has no {missing}; justifications come from a distilled file "
                "(claimflow finetune distill), given as data.train_file / data.dev_file"
            )


def label_set(task: Task, rows: Sequence[Row]) -> tuple[str, ...]:
    """The task's labels that occur in training, in the task's order."""
    present = {label for *_, label in rows}
    return tuple(label for label in TASK_LABELS[task] if label in present)


class ClassifierTrainer:
    def __init__(self, config: ClassifierConfig, *, store: ModelStore | None = None) -> None:
        import torch
        from transformers import AutoTokenizer

        self.config = config
        self.torch = torch
        self.setup = TrainerSetup.prepare(
            config.base_model, config.output_dir, threads=config.threads, seed=config.training.seed, store=store
        )
        self.store, self.base, self.out = self.setup.store, self.setup.base, self.setup.output_dir
        self.tokenizer = AutoTokenizer.from_pretrained(self.base.location)
        self.encoder = FieldEncoder(self.tokenizer, config.inputs, config.max_length)
        data, seed = config.data, config.training.seed
        self.train_rows = all_rows(data, "train", seed)
        self.dev_rows = all_rows(data, "dev", seed)
        require_fields(self.train_rows, config.inputs, "train")
        require_fields(self.dev_rows, config.inputs, "dev")
        self.labels = label_set(data.task, self.train_rows)
        if len(self.labels) < 2:
            raise InputError(f"training data has fewer than two labels: {self.labels}")
        # the new head's "newly initialized" report is expected here
        with self.setup.building(), quiet_transformers():
            model = load_encoder_model(Path(self.base.location), self.labels)
            self.init_record = None
            if config.init_from is not None:
                self.init_record = encoder_init_record(config.init_from)
                apply_encoder_init(model, self.init_record, self.base)
            if config.mode == "lora":
                from peft import LoraConfig, get_peft_model

                model = get_peft_model(
                    model,
                    LoraConfig(
                        task_type="SEQ_CLS",
                        r=config.lora_r,
                        lora_alpha=config.lora_alpha,
                        lora_dropout=config.lora_dropout,
                        target_modules=list(config.lora_targets),
                    ),
                )
        self.model: Any = model

    def _targets(self, rows: Sequence[Row]) -> Any:
        index = {label: i for i, label in enumerate(self.labels)}
        return self.torch.tensor([index[label] for *_, label in rows])

    def dev_predictions(self, rows: Sequence[Row]) -> list[str]:
        preds: list[str] = []
        size = self.config.training.eval_batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            logits = self.model(**self.encoder.batch([fields for _, fields, _ in chunk])).logits
            preds += [self.labels[i] for i in logits.argmax(dim=-1).tolist()]
        return preds

    def _save_best(self, metrics: dict[str, Any]) -> None:
        save_best_model(self.model, self.out, metrics)

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train (or resume); the best model and its provenance are in ``output_dir/best``."""
        from claimflow.evals.metrics import macro_f1

        torch, rows = self.torch, self.train_rows
        targets = self._targets(rows)
        counts = torch.bincount(targets, minlength=len(self.labels)).float()
        weights = class_weights(counts, self.config.class_weights)
        dev_gold = [label for *_, label in self.dev_rows]
        metric = macro_f1(present_labels(self.labels, dev_gold))

        def batch_loss(indices: Sequence[int]) -> Any:
            encoded = self.encoder.batch([rows[i][1] for i in indices])
            logits = self.model(**encoded).logits
            return torch.nn.functional.cross_entropy(logits, targets[list(indices)], weight=weights)

        def evaluate() -> dict[str, Any]:
            preds = self.dev_predictions(self.dev_rows)
            return {"score": metric(dev_gold, preds), "metric": "macro_f1"}

        t0 = time.perf_counter()
        loop = ResumableLoop(self.model, self.config.training, self.out, threads=self.setup.threads)
        summary = loop.run(len(rows), batch_loss, evaluate, self._save_best, on_step)
        summary.update(
            train_size=len(rows),
            dev_size=len(self.dev_rows),
            label_counts=dict(zip(self.labels, counts.int().tolist(), strict=True)),
            wall_seconds_this_process=round(time.perf_counter() - t0, 1),
        )
        self._write_provenance(summary)
        return summary

    def _write_provenance(self, summary: dict[str, Any]) -> None:
        fields = {
            "kind": "encoder_classifier",
            "base_model": base_model_record(self.base),
            "mode": self.config.mode,
            "inputs": list(self.config.inputs),
            "max_length": self.config.max_length,
            "labels": list(self.labels),
            "task": self.config.data.task,
        }
        if self.init_record is not None:
            fields["init_from"] = self.init_record
        write_artifact_provenance(self.out, fields, config=self.config, summary=summary, command="classifier")


def evaluate_classifier(
    artifact: Path, config: ClassifierConfig, split: str, file: Path | None = None, *, positive: str | None = None
) -> dict[str, Any]:
    """Macro-F1 (or F1 of ``positive``) with a bootstrap CI, accuracy and timing of ``artifact`` on ``split``."""
    from claimflow.evals.metrics import classification_metrics, macro_f1, positive_f1
    from claimflow.evals.stats import bootstrap_ci
    from claimflow.predictors.encoder import EncoderClassifier

    classifier = EncoderClassifier(artifact, threads=config.threads)
    rows = load_rows(config.data, split, file, None, config.training.seed)
    require_fields(rows, classifier.inputs, split)
    start = time.perf_counter()
    scores = classifier.predict([fields for _, fields, _ in rows])
    seconds = time.perf_counter() - start
    gold, preds = [label for *_, label in rows], [s.label for s in scores]
    metric = positive_f1(positive) if positive else macro_f1(present_labels(classifier.labels, gold))
    metrics = classification_metrics(gold, preds, classifier.labels)
    low, high = bootstrap_ci(gold, preds, metric)
    return {
        "split": split,
        "n": len(rows),
        "metric": metric.__name__,
        "value": metric(gold, preds),
        "ci95": [low, high],
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "seconds": round(seconds, 2),
        "items_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "ids": [i for i, _, _ in rows],
        "predictions": preds,
    }


def record_evaluation(artifact: Path, scored: dict[str, Any]) -> dict[str, Any]:
    """Add ``scored`` (without its per-item lists) to the artifact's provenance under ``evaluation``."""
    summary = {k: v for k, v in scored.items() if k not in ("ids", "predictions", "gold")}
    path = artifact / "provenance.json"
    provenance = json.loads(path.read_text(encoding="utf-8"))
    provenance.setdefault("evaluation", {})[summary["split"]] = summary
    path.write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return summary

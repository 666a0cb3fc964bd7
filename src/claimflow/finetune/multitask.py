"""Multi-task fine-tuning: one shared encoder, classification heads for stance, relevance and claims.

The multi-task paper's setting (../shared/papers/multitask-llm-fact-checking-summary.md) at our
scale: a MiniLM-L6 (or any HF encoder) trained on mixed-task batches with per-task loss weights,
full fine-tune or LoRA (PEFT; the adapter and heads are a few MB), on the shared resumable loop
(:class:`~claimflow.finetune.loop.ResumableLoop`: checkpoints, resume after a crash, early
stopping on the dev score). Data: :mod:`claimflow.finetune.multitask_data`.

Task schedules (which items a step's batch holds; always a function of the step, so a resumed
run replays the same batches):

- ``proportional``: seeded shuffles of all tasks' items together (tasks mix in proportion to size);
- ``round_robin``: step ``s`` takes a whole batch from task ``s mod n``;
- ``ordered``: the paper's curriculum: the steps split into one phase per task of ``order``; phase
  ``k`` mixes (proportionally) the first ``k+1`` tasks, so a task joins the ones already learnt
  rather than replacing them.

The loss of a batch is ``sum_t weight_t * share_t * CE_t`` (``share_t``: the fraction of the batch
that is task ``t``; CE class-weighted per task). The dev score that selects the best step is the
(weighted) mean of stance macro-F1, relevance macro-F1 and claim F1(Yes) on the dev sets.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from claimflow.errors import InputError
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainerSetup,
    TrainingConfig,
    batch_indices,
    class_weights,
    save_best_model,
)
from claimflow.finetune.multitask_data import (
    TASK_LABEL_SETS,
    TASKS,
    MultitaskData,
    MultitaskSplits,
    TaskExample,
    TaskName,
    build_splits,
)
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import base_model_record, quiet_transformers

log = logging.getLogger(__name__)

Schedule = Literal["proportional", "round_robin", "ordered"]


class MultitaskConfig(TrainingConfig):
    """A multi-task encoder training run (YAML, unknown keys refused)."""

    output_dir: Path
    base_model: str = "minilm-l6"
    tasks: tuple[TaskName, ...] = TASKS
    mode: Literal["full", "lora"] = "lora"
    freeze_embeddings: bool = Field(
        False,
        description="full mode: keep the embedding tables (and an unused pooler) frozen and save only the "
        "trained tensors, fp16, over the pinned base (a MiniLM-L6 artifact of ~21 MB instead of 90 MB)",
    )
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    init_from: Path | None = Field(
        None,
        description="full mode with freeze_embeddings: start from this multi-task artifact (its encoder delta and "
        "heads, over the same pinned base) instead of the base encoder and fresh heads",
    )
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(160, ge=16, description="tokens of an input; a long pair is cut from its longer side")
    schedule: Schedule = "proportional"
    order: tuple[TaskName, ...] = ("relevance", "stance", "claim")
    loss_weights: dict[TaskName, float] = Field(default_factory=dict, description="per task; default 1")
    selection_weights: dict[TaskName, float] = Field(
        default_factory=dict, description="weights of the task dev metrics in the selection score; default 1"
    )
    class_weights: Literal["balanced", "none"] = "balanced"
    data: MultitaskData = MultitaskData()
    training: LoopSettings = LoopSettings(batch_size=32, learning_rate=5e-4, max_steps=1500, eval_every=150)
    threads: int | None = None

    @model_validator(mode="after")
    def _tasks(self) -> MultitaskConfig:
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: a non-empty list without repeats, drawn from {TASKS}")
        if self.freeze_embeddings and self.mode != "full":
            raise ValueError("freeze_embeddings applies to mode: full (LoRA already freezes the base)")
        if self.init_from is not None and not (self.mode == "full" and self.freeze_embeddings):
            raise ValueError("init_from needs mode: full with freeze_embeddings: true (a compact encoder delta)")
        if self.schedule == "ordered" and sorted(self.order) != sorted(self.tasks):
            raise ValueError(f"order {list(self.order)} must list each of tasks {list(self.tasks)} once")
        return self


class TaskSchedule:
    """Batch indices (into the concatenated task lists) for each step."""

    def __init__(self, sizes: dict[str, int], config: MultitaskConfig) -> None:
        self.tasks = list(sizes)
        self.sizes = sizes
        self.offsets: dict[str, int] = {}
        total = 0
        for task in self.tasks:
            self.offsets[task] = total
            total += sizes[task]
        self.total = total
        self.kind = config.schedule
        self.order = [t for t in config.order if t in sizes]
        self.batch_size = config.training.batch_size
        self.seed = config.training.seed
        self.max_steps = config.training.max_steps

    def _pool(self, tasks: Sequence[str]) -> list[int]:
        return [self.offsets[t] + i for t in tasks for i in range(self.sizes[t])]

    def __call__(self, step: int) -> list[int]:
        if self.kind == "proportional":
            return batch_indices(self.total, step, self.batch_size, self.seed)
        if self.kind == "round_robin":
            k = step % len(self.tasks)
            task = self.tasks[k]
            local = batch_indices(self.sizes[task], step // len(self.tasks), self.batch_size, self.seed + k)
            return [self.offsets[task] + i for i in local]
        n = len(self.order)
        phase = min(step * n // self.max_steps, n - 1)
        start = -(-phase * self.max_steps // n)  # first step of the phase: ceil(phase * max_steps / n)
        pool = self._pool(self.order[: phase + 1])
        local = batch_indices(len(pool), step - start, self.batch_size, self.seed + phase)
        return [pool[i] for i in local]


def dev_metrics(task: str, gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Stance and relevance: macro-F1; claim detection: F1 of Yes."""
    from claimflow.evals.metrics import macro_f1, positive_f1

    metric = positive_f1("Yes") if task == "claim" else macro_f1(TASK_LABEL_SETS[task])  # type: ignore[index]
    return float(metric(list(gold), list(predicted)))


class MultitaskTrainer:
    """Builds the data and the model of a :class:`MultitaskConfig`; :meth:`train` runs (or resumes) it."""

    def __init__(
        self, config: MultitaskConfig, *, store: ModelStore | None = None, splits: MultitaskSplits | None = None
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from claimflow.predictors.multitask_model import MultiTaskModel

        self.config = config
        self.torch = torch
        self.setup = TrainerSetup.prepare(
            config.base_model, config.output_dir, threads=config.threads, seed=config.training.seed, store=store
        )
        self.store, self.base, self.out = self.setup.store, self.setup.base, self.setup.output_dir
        self.tokenizer = AutoTokenizer.from_pretrained(self.base.location)
        self.splits = splits or build_splits(config.data, config.tasks, config.training.seed)
        self.items: list[TaskExample] = [item for task in config.tasks for item in self.splits.train[task]]
        self.labels = {task: TASK_LABEL_SETS[task] for task in config.tasks}
        with self.setup.building():
            with quiet_transformers():
                backbone = AutoModel.from_pretrained(self.base.location)
                if config.mode == "lora":
                    from peft import LoraConfig, get_peft_model

                    backbone = get_peft_model(
                        backbone,
                        LoraConfig(
                            r=config.lora_r,
                            lora_alpha=config.lora_alpha,
                            lora_dropout=config.lora_dropout,
                            target_modules=list(config.lora_targets),
                        ),
                    )
            self.model: Any = MultiTaskModel(
                backbone, {str(t): n for t, n in self.labels.items()}, pooling=config.pooling
            )
            if config.mode == "full" and config.freeze_embeddings:
                for name, param in backbone.named_parameters():
                    if name.startswith("embeddings.") or (config.pooling == "mean" and name.startswith("pooler.")):
                        param.requires_grad_(False)
                self.model.compact = True
            if config.init_from is not None:
                self._warm_start(config.init_from)

    def _warm_start(self, folder: Path) -> None:
        """Overlay a compact multi-task artifact's delta and heads (same base, same task labels)."""
        from claimflow.predictors.encoder import ENCODER_DELTA
        from claimflow.predictors.multitask_model import HEADS_CONFIG

        try:
            provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
            heads = json.loads((folder / HEADS_CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"init_from {folder}: not a multi-task artifact ({exc})") from exc
        if not (folder / ENCODER_DELTA).exists():
            raise InputError(f"init_from {folder}: no {ENCODER_DELTA} (only a compact full fine-tune warm-starts)")
        want = base_model_record(self.base).get("weights_sha256")
        have = provenance.get("base_model", {}).get("weights_sha256")
        if want != have:
            raise InputError(f"init_from {folder}: trained over base sha256 {have}, this run's base is {want}")
        theirs = {t: tuple(n) for t, n in heads.get("labels", {}).items()}
        if heads.get("pooling") != self.config.pooling or any(theirs.get(t) != n for t, n in self.labels.items()):
            raise InputError(f"init_from {folder}: its heads ({theirs}, {heads.get('pooling')}) differ from this run's")
        self.model.load_delta(folder)
        self.model.load_heads(folder)
        log.info("warm start from %s", folder)

    def _encode(self, items: Sequence[TaskExample]) -> Any:
        from claimflow.predictors.multitask_model import encode_items

        return encode_items(self.tokenizer, [(i.text_a, i.text_b) for i in items], self.config.max_length)

    def predict(self, task: str, items: Sequence[TaskExample]) -> list[list[float]]:
        """P(label) under ``task``'s head for each item (batched; call in inference mode)."""
        torch = self.torch
        out: list[list[float]] = []
        size = self.config.training.eval_batch_size
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            logits = self.model.all_heads(self._encode(chunk), [task])[task]
            out += torch.softmax(logits.float(), dim=-1).tolist()
        return out

    def evaluate_dev(self) -> dict[str, Any]:
        scores: dict[str, float] = {}
        for task in self.config.tasks:
            items = self.splits.dev.get(task, [])
            if not items:
                continue
            labels = self.labels[task]
            predicted = [labels[max(range(len(p)), key=p.__getitem__)] for p in self.predict(task, items)]
            scores[task] = round(dev_metrics(task, [i.label for i in items], predicted), 4)
        chosen = {str(t): w for t, w in self.config.selection_weights.items()}
        weights = {t: chosen.get(t, 1.0) for t in scores}
        total = sum(weights.values()) or 1.0
        score = sum(scores[t] * weights[t] for t in scores) / total
        return {"score": score, "metric": "weighted mean of task dev metrics", "tasks": scores}

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train (or resume); the best model and its provenance are in ``output_dir/best``."""
        torch, cfg = self.torch, self.config
        targets = torch.tensor([self.labels[i.task].index(i.label) for i in self.items])
        weights: dict[str, Any] = {}
        counts: dict[str, dict[str, int]] = {}
        for task in cfg.tasks:
            task_targets = torch.tensor([self.labels[task].index(i.label) for i in self.splits.train[task]])
            per_label = torch.bincount(task_targets, minlength=len(self.labels[task])).float()
            weights[task] = class_weights(per_label, cfg.class_weights)
            counts[task] = dict(zip(self.labels[task], per_label.int().tolist(), strict=True))
        schedule = TaskSchedule({t: len(self.splits.train[t]) for t in cfg.tasks}, cfg)

        def batch_loss(indices: Sequence[int]) -> Any:
            batch = [self.items[i] for i in indices]
            tasks = [item.task for item in batch]
            logits = self.model(self._encode(batch), tasks)
            loss = torch.zeros(())
            for task, task_logits in logits.items():
                rows = [i for i, t in zip(indices, tasks, strict=True) if t == task]
                share = len(rows) / len(indices)
                ce = torch.nn.functional.cross_entropy(task_logits, targets[rows], weight=weights[task])
                loss = loss + cfg.loss_weights.get(task, 1.0) * share * ce
            return loss

        self._check_same_run()
        t0 = time.perf_counter()
        loop = ResumableLoop(self.model, cfg.training, self.out, threads=self.setup.threads)
        summary = loop.run(
            len(self.items),
            batch_loss,
            self.evaluate_dev,
            lambda metrics: save_best_model(self.model, self.out, metrics),
            on_step,
            batch_for=schedule,
        )
        summary.update(
            train_size={t: len(self.splits.train[t]) for t in cfg.tasks},
            dev_size={t: len(v) for t, v in self.splits.dev.items()},
            label_counts=counts,
            wall_seconds_this_process=round(time.perf_counter() - t0, 1),
        )
        self._write_provenance(summary)
        return summary

    def _check_same_run(self) -> None:
        """A checkpoint resumes only the run that wrote it: the data order and schedule depend on the config.

        Only the stopping settings (``training.max_steps``, ``patience``) may change, to end a run
        early (an ``ordered`` schedule's phases follow ``max_steps``, so there it must stay)."""
        path = self.out / "run_config.json"
        current = self.config.model_dump(mode="json")
        if (self.out / "checkpoint" / "state.pt").exists() and path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            stoppable = ("patience",) if self.config.schedule == "ordered" else ("max_steps", "patience")
            for config in (saved, current):
                config["training"] = {k: v for k, v in config["training"].items() if k not in stoppable}
            if saved != current:
                changed = sorted(k for k in current if saved.get(k) != current[k])
                raise InputError(
                    f"{self.out} holds a checkpoint of a run with another config (changed: {changed}); "
                    "restore that config to resume, or give a new output_dir"
                )
        path.write_text(json.dumps(self.config.model_dump(mode="json"), indent=2), encoding="utf-8")

    def _write_provenance(self, summary: dict[str, Any]) -> None:
        from claimflow.finetune.loop import write_artifact_provenance

        fields = {
            "kind": "multitask_encoder",
            "base_model": base_model_record(self.base),
            "mode": self.config.mode,
            "tasks": list(self.config.tasks),
            "labels": {t: list(n) for t, n in self.labels.items()},
            "pooling": self.config.pooling,
            "max_length": self.config.max_length,
        }
        data = {
            "counts": self.splits.counts(),
            "held_out_claims": self.splits.held_out_claims,
            "split": {"dev_fraction": self.config.data.dev_fraction, "seed": self.config.data.split_seed},
        }
        write_artifact_provenance(
            self.out, fields, config=self.config, summary=summary, command="multitask", after_training={"data": data}
        )

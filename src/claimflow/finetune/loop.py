"""A resumable training loop shared by the classifier trainers.

The data order is a function of the step (a seeded shuffle per epoch), so a run resumed from a
checkpoint sees exactly the batches it would have seen. Every ``checkpoint_every`` steps the
trainable parameters, optimizer, scheduler position, RNG and history are written atomically; dev is
evaluated every ``eval_every`` steps, the best model is saved, and training stops after
``patience`` evaluations without a gain (early stopping).
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import Field

from claimflow.config import validate_config
from claimflow.errors import InputError
from claimflow.io import load_yaml, write_failure
from claimflow.models.store import ModelStore, ResolvedModel
from claimflow.predictors.encoder import quiet_transformers
from claimflow.provenance import stamp
from claimflow.torch_scope import seeded, torch_threads
from claimflow.types import StrictModel

log = logging.getLogger(__name__)


class TrainingConfig(StrictModel):
    """Base of the training-run configs: strict, frozen, read from YAML with clear errors."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        data = load_yaml(path, "training config", mapping=True)
        return validate_config(cls, data, f"training config {path}")


class LoopSettings(StrictModel):
    batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(20, ge=0)
    max_steps: int = Field(300, ge=1)
    eval_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(25, ge=1)
    patience: int = Field(4, ge=1, description="evaluations without a dev gain before stopping")
    seed: int = 0


def save_best_model(
    model: Any, out_dir: Path, metrics: dict[str, Any], *, extra_json: Mapping[str, Any] | None = None
) -> None:
    """``model.save_pretrained`` into ``out_dir/best`` (written aside, then swapped in) + its dev metrics
    and the ``extra_json`` files (name -> content, e.g. a tuned threshold)."""
    tmp, final = out_dir / "best.tmp", out_dir / "best"
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_transformers():  # no "Writing model shards" bar in the trainer's output
        model.save_pretrained(str(tmp))
    (tmp / "README.md").unlink(missing_ok=True)  # PEFT's empty model-card template
    (tmp / "dev_metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    for name, content in (extra_json or {}).items():
        (tmp / name).write_text(json.dumps(content), encoding="utf-8")
    swap_in_folder(tmp, final)


def swap_in_folder(tmp: Path, final: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``final``: the old one is moved aside first and
    removed after, so a kill at any point leaves a whole ``final`` or what :func:`recover_folder`
    puts back."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.replace(old)
    tmp.replace(final)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(final: Path) -> None:
    """Finish a :func:`swap_in_folder` a kill interrupted (``final`` moved aside, the new one not yet in)."""
    old, tmp = final.with_name(final.name + ".old"), final.with_name(final.name + ".tmp")
    if old.exists() and not final.exists():
        (tmp if tmp.exists() else old).replace(final)
    shutil.rmtree(old, ignore_errors=True)


def write_artifact_provenance(
    out_dir: Path,
    fields: Mapping[str, Any],
    *,
    config: TrainingConfig,
    summary: Mapping[str, Any],
    command: str,
    after_training: Mapping[str, Any] | None = None,
    gold_labels_in_inputs: bool | None = False,
) -> None:
    """Finish a run's artifact: ``out_dir/best/provenance.json`` and ``out_dir/history.json``.

    The provenance is the trainer's own ``fields`` (kind, base model, labels, ...), then what every
    trainer records in this order: the run's ``config``, its ``training`` summary (without the
    history, which goes to ``history.json``), ``after_training`` (e.g. the data counts),
    ``gold_labels_in_inputs`` (left out where None), the :func:`claimflow.provenance.stamp` and the
    ``reproduce`` line for ``claimflow finetune <command>``."""
    best = out_dir / "best"
    if not best.exists():
        raise InputError(f"{out_dir}: training ended before any dev evaluation; nothing to save")
    provenance = {
        **fields,
        "config": config.model_dump(mode="json"),
        "training": {k: v for k, v in summary.items() if k != "history"},
        **(after_training or {}),
    }
    if gold_labels_in_inputs is not None:
        provenance["gold_labels_in_inputs"] = gold_labels_in_inputs
    provenance |= stamp(reproduce=f"claimflow finetune {command} --config <this run's config, reproduced in 'config'>")
    (best / "provenance.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    (out_dir / "history.json").write_text(json.dumps(summary["history"]), encoding="utf-8")


def class_weights(counts: Any, mode: str) -> Any:
    """Loss weights per class from its training count: ``balanced`` (n / (k * count)) or all ones."""
    import torch

    if mode != "balanced":
        return torch.ones(len(counts))
    return counts.sum() / (len(counts) * counts.clamp(min=1))


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """The example indices of ``step``: epoch-wise seeded shuffles, so resuming replays the same order."""
    per_epoch = max(1, math.ceil(n / batch_size))
    epoch, offset = divmod(step, per_epoch)
    order = list(range(n))
    random.Random(seed + epoch).shuffle(order)
    return order[offset * batch_size : (offset + 1) * batch_size]


def warmup_cosine(step: int, warmup_steps: int, max_steps: int) -> float:
    """The learning-rate factor of ``step``: a linear warmup, ``(step + 1) / warmup_steps`` up to 1,
    times a cosine decay over the whole run, ``(1 + cos(pi * step / max_steps)) / 2``.

    Not transformers' ``get_cosine_schedule_with_warmup``, whose warmup starts at 0 and whose cosine
    starts after it: checkpoints resume, and runs reproduce, on this schedule."""
    warmup = min(1.0, (step + 1) / max(warmup_steps, 1))
    return warmup * max(0.0, 0.5 * (1 + math.cos(math.pi * min(step, max_steps) / max_steps)))


@dataclass(frozen=True)
class TrainerSetup:
    """What every trainer prepares the same way: the model store, the resolved (sha256-verified) base
    model and the output folder; its thread count and seed hold only around its own work (the model's
    construction here, training in :class:`ResumableLoop`), never for the rest of the process."""

    store: ModelStore
    base: ResolvedModel
    output_dir: Path
    threads: int | None
    seed: int

    @classmethod
    def prepare(
        cls, base_model: str, output_dir: Path, *, threads: int | None, seed: int, store: ModelStore | None = None
    ) -> TrainerSetup:
        store = store or ModelStore()
        base = store.resolve(base_model)
        output_dir.mkdir(parents=True, exist_ok=True)
        return cls(store, base, output_dir, threads, seed)

    @contextmanager
    def building(self) -> Iterator[None]:
        """Threads and seed while the model is built (new heads and adapters draw their initial weights)."""
        with torch_threads(self.threads), seeded(self.seed):
            yield


class ResumableLoop:
    """Train ``model``'s trainable parameters with AdamW and a linear warmup + cosine schedule.

    ``upgrade_checkpoint`` turns a loaded checkpoint of another layout (a trainer's older loop) into
    this one's: ``{"state", "params", "optimizer", "torch_rng"}``.
    """

    def __init__(
        self,
        model: Any,
        settings: LoopSettings,
        out_dir: Path,
        *,
        upgrade_checkpoint: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        threads: int | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.threads = threads
        self.model = model
        self.settings = settings
        self.out_dir = out_dir
        self.upgrade_checkpoint = upgrade_checkpoint
        self.params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if not self.params:
            raise ValueError("the model has no trainable parameters")

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint" / "state.pt"

    def _save(self, state: dict[str, Any], optimizer: Any) -> None:
        torch = self.torch
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "state": state,
            "params": {name: p.detach().clone() for name, p in self.params.items()},
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        try:
            torch.save(payload, tmp)
            tmp.replace(path)
        except (OSError, RuntimeError) as exc:  # a full disk: torch's writer says "unexpected pos"
            kept = "the previous checkpoint stays, and a rerun resumes from it" if path.exists() else "none was saved"
            error = write_failure(tmp, exc, kept + "; free some space")
            tmp.unlink(missing_ok=True)
            raise error from exc

    def run(
        self,
        n_train: int,
        batch_loss: Callable[[Sequence[int]], Any],
        evaluate: Callable[[], dict[str, Any]],
        save_best: Callable[[dict[str, Any]], None],
        on_step: Callable[[dict[str, Any]], None] | None = None,
        batch_for: Callable[[int], Sequence[int]] | None = None,
    ) -> dict[str, Any]:
        """Train (or resume). ``evaluate`` returns a dict with ``score`` (higher is better).

        ``batch_for(step)`` gives the indices of a step's batch (a task schedule); by default, epoch-wise
        seeded shuffles of ``range(n_train)``. Either way the batch is a function of the step alone.

        Runs with the loop's ``threads`` and seeded from ``settings.seed``; both are restored after.
        """
        recover_folder(self.out_dir / "best")
        with torch_threads(self.threads), seeded(self.settings.seed):
            torch, cfg = self.torch, self.settings
            optimizer = torch.optim.AdamW(
                list(self.params.values()), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
            )
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.max_steps)
            )
            state: dict[str, Any] = {
                "step": 0,
                "best_score": -math.inf,
                "best_step": 0,
                "best_metrics": {},
                "bad_evals": 0,
                "history": [],
                "train_seconds": 0.0,
            }

            def dev_evaluation(state: dict[str, Any]) -> None:
                self.model.eval()
                with torch.inference_mode():
                    metrics = evaluate()
                self.model.train()
                state["history"].append({"step": state["step"], **metrics})
                if metrics["score"] > state["best_score"]:
                    state.update(best_score=metrics["score"], best_step=state["step"], best_metrics=metrics)
                    state["bad_evals"] = 0
                    save_best(metrics)
                else:
                    state["bad_evals"] += 1
                log.info("step %d dev %.4f", state["step"], metrics["score"])

            resumed = False
            if self.checkpoint_path.exists():
                saved = torch.load(self.checkpoint_path, weights_only=False)
                if self.upgrade_checkpoint is not None:
                    saved = self.upgrade_checkpoint(saved)
                with torch.no_grad():
                    for name, value in saved["params"].items():
                        self.params[name].copy_(value)
                optimizer.load_state_dict(saved["optimizer"])
                torch.set_rng_state(saved["torch_rng"])
                state = saved["state"]
                with warnings.catch_warnings():  # fast-forwarding the schedule, not training
                    warnings.simplefilter("ignore", UserWarning)
                    for _ in range(state["step"]):
                        schedule.step()
                resumed = True
                log.info("resumed from step %d", state["step"])
            self.model.train()
            started = time.perf_counter()
            while state["step"] < cfg.max_steps and state["bad_evals"] < cfg.patience:
                step = state["step"]
                indices = batch_for(step) if batch_for else batch_indices(n_train, step, cfg.batch_size, cfg.seed)
                loss = batch_loss(indices)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(self.params.values()), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                state["step"] = step + 1
                state["history"].append({"step": step + 1, "loss": float(loss.item())})
                if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.max_steps:
                    dev_evaluation(state)
                if state["step"] % cfg.checkpoint_every == 0 or state["step"] == cfg.max_steps:
                    state["train_seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    self._save(state, optimizer)
                if on_step:
                    on_step({"step": state["step"], "loss": float(loss.item())})
            if state["step"] and not state["best_step"]:  # resumed past a lowered max_steps: no evaluation yet
                dev_evaluation(state)
            state["train_seconds"] += time.perf_counter() - started
            self._save(state, optimizer)
            return {
                "resumed": resumed,
                "steps": state["step"],
                "stopped_early": state["step"] < cfg.max_steps,
                "best_step": state["best_step"],
                "best_dev": state["best_metrics"],
                "train_seconds": round(state["train_seconds"], 1),
                "history": state["history"],
            }

"""Compose reasoning LoRAs for veracity (the LoraMap paper): ``claimflow finetune compose -c FILE``.

``method: lorahub`` searches one coefficient per source LoRA and transformer block with a gradient-free
optimiser (nevergrad; CMA-ES by default — the LoraHub paper's ``NGOpt`` picks COBYLA at small budgets,
which cannot be dumped for resuming) on a few-shot train sample: cross-entropy of
the label words plus an L1 penalty on the coefficients, starting from zeros (the base model). The search
is dumped every few evaluations and resumes from the dump after a crash.

``method: loraconcat`` / ``loramap`` train on the resumable loop (:mod:`claimflow.finetune.loop`: class
weights, dev early stopping on macro-F1, checkpoints, resume after SIGKILL): the concatenated matrices,
or only the maps between them. Every method scores the label words' first tokens after the template's
prompt (default ``factcheck_true_false@1``: TRUE / FALSE) and saves ``output_dir/best`` as a
self-contained ``composed_lora`` artifact (see :mod:`claimflow.predictors.composed_lora`), which the
graph loads with ``veracity: {predictor: lora, lora: DIR}``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from claimflow.errors import ConfigError, InputError
from claimflow.finetune.classifier import ClassifierData, Row, load_rows
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainingConfig,
    class_weights,
    swap_in_folder,
    write_artifact_provenance,
)
from claimflow.models.store import ModelStore
from claimflow.torch_scope import seeded, torch_threads
from claimflow.types import StrictModel

__all__ = ["ComposeConfig", "ComposeTrainer", "HubSettings"]

log = logging.getLogger(__name__)


class HubSettings(StrictModel):
    """LoraHub's gradient-free search."""

    shots: int = Field(20, ge=1, description="train examples the coefficients are fitted on")
    budget: int = Field(40, ge=1, description="objective evaluations")
    l1: float = Field(0.05, ge=0, description="weight of the coefficients' mean absolute value in the objective")
    bound: float = Field(1.5, gt=0, description="coefficients are searched in [-bound, bound]")
    optimizer: str = Field(
        "CMA",
        description="a nevergrad optimizer name; it must pickle (the search resumes from its dump): NGOpt picks "
        "COBYLA at small budgets, which neither pickles nor lets the process exit",
    )
    dump_every: int = Field(5, ge=1)


class ComposeConfig(TrainingConfig):
    """A composition run (YAML, unknown keys refused)."""

    output_dir: Path
    method: Literal["lorahub", "loraconcat", "loramap"]  # predictors.composed_lora.METHODS (that module loads torch)
    sources: tuple[Path, ...] = Field(..., min_length=1, description="PEFT LoRA folders on base_model")
    base_model: str = "smollm2-135m-instruct"
    template: str = "factcheck_true_false@1"
    label_map: dict[str, str] = Field(
        default_factory=lambda: {"SUPPORTED": "TRUE", "REFUTED": "FALSE"},
        description="task label -> the template's label",
    )
    map_dim: int = Field(16, ge=1, description="LoraMap's m")
    max_input_tokens: int = Field(256, ge=16)
    max_evidence_sentences: int = Field(5, ge=1)
    class_weights: Literal["balanced", "none"] = "balanced"
    hub: HubSettings = HubSettings()
    data: ClassifierData = ClassifierData()
    training: LoopSettings = LoopSettings(batch_size=8, eval_batch_size=16, learning_rate=5e-4)
    threads: int | None = None


class ComposeTrainer:
    def __init__(self, config: ComposeConfig, *, store: ModelStore | None = None) -> None:
        from claimflow.predictors.composed_lora import ComposedLoraClassifier

        self.config = config
        data, seed = config.data, config.training.seed
        self.train_rows = self._known(load_rows(data, data.train_split, data.train_file, data.train_sample, seed))
        self.dev_rows = self._known(load_rows(data, data.dev_split, data.dev_file, data.dev_sample, seed))
        self.out = config.output_dir
        self.out.mkdir(parents=True, exist_ok=True)
        with torch_threads(config.threads), seeded(seed):
            self.net = ComposedLoraClassifier.from_sources(
                config.sources,
                method=config.method,
                base_model=config.base_model,
                template=config.template,
                label_map=config.label_map,
                map_dim=config.map_dim,
                max_input_tokens=config.max_input_tokens,
                max_evidence_sentences=config.max_evidence_sentences,
                store=store,
                threads=config.threads,
                batch_size=config.training.eval_batch_size,
            )
        self.labels = self.net.labels
        self.index = {label: i for i, label in enumerate(self.labels)}

    def _known(self, rows: list[Row]) -> list[Row]:
        kept = [row for row in rows if row[2] in self.config.label_map]
        if not kept:
            raise InputError(f"no example has a label of label_map {sorted(self.config.label_map)}")
        return kept

    # --- shared ---------------------------------------------------------------------------------------

    def _dev_score(self, dev: Sequence[list[int]]) -> dict[str, Any]:
        from claimflow.evals.metrics import macro_f1

        probs = self.net.probabilities(dev)
        preds = [self.labels[max(range(len(p)), key=p.__getitem__)] for p in probs]
        gold = [label for *_, label in self.dev_rows]
        present = tuple(label for label in self.labels if label in gold)
        return {"score": macro_f1(present)(gold, preds), "metric": "macro_f1"}

    def _save_best(self, metrics: Mapping[str, Any]) -> None:
        from claimflow.predictors.composed_lora import COMPOSED_FILE, save_composed_tensors

        tmp, final = self.out / "best.tmp", self.out / "best"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_composed_tensors(self.net.model, tmp / COMPOSED_FILE)
        (tmp / "dev_metrics.json").write_text(json.dumps(dict(metrics)), encoding="utf-8")
        swap_in_folder(tmp, final)

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Compose (or resume); the artifact is ``output_dir/best``."""
        from claimflow.predictors.composed_lora import trainable_count

        t0 = time.perf_counter()
        train = [self.net.encode(fields) for _, fields, _ in self.train_rows]
        dev = [self.net.encode(fields) for _, fields, _ in self.dev_rows]
        if self.config.method == "lorahub":
            summary = self._search(train, dev, on_step)
        else:
            summary = self._fit(train, dev, on_step)
        summary["wall_seconds_this_process"] = round(time.perf_counter() - t0, 1)
        fields = {
            "kind": "composed_lora",
            "method": self.config.method,
            "base_model": self.net.base_record,
            "sources": self.net.sources,
            "map_dim": self.config.map_dim,
            "template": self.net.template.ref,
            "label_map": self.config.label_map,
            "labels": list(self.labels),
            "max_input_tokens": self.config.max_input_tokens,
            "max_evidence_sentences": self.config.max_evidence_sentences,
            "inputs": list(self.net.template.inputs),
            "trainable_parameters": trainable_count(self.net.model),
        }
        write_artifact_provenance(
            self.out,
            fields,
            config=self.config,
            summary=summary,
            command="compose",
            after_training={"train_size": len(train), "dev_size": len(dev)},
        )
        return summary

    # --- loraconcat / loramap -------------------------------------------------------------------------

    def _fit(
        self, train: list[list[int]], dev: list[list[int]], on_step: Callable[[dict[str, Any]], None] | None
    ) -> dict[str, Any]:
        import torch

        targets = torch.tensor([self.index[label] for *_, label in self.train_rows])
        counts = torch.bincount(targets, minlength=len(self.labels)).float()
        weights = class_weights(counts, self.config.class_weights)
        net = self.net

        def batch_loss(indices: Sequence[int]) -> Any:
            logits = net.label_logits([train[i] for i in indices])
            return torch.nn.functional.cross_entropy(logits.float(), targets[list(indices)], weight=weights)

        loop = ResumableLoop(net.model, self.config.training, self.out, threads=self.config.threads)
        net.model.train()
        summary = loop.run(len(train), batch_loss, lambda: self._dev_score(dev), self._save_best, on_step)
        net.model.eval()
        return summary

    # --- lorahub --------------------------------------------------------------------------------------

    def _search(
        self, train: list[list[int]], dev: list[list[int]], on_step: Callable[[dict[str, Any]], None] | None
    ) -> dict[str, Any]:
        import random

        import nevergrad as ng
        import numpy as np
        import torch

        from claimflow.predictors.composed_lora import composed_layers, layer_index

        hub, seed = self.config.hub, self.config.training.seed
        layers = composed_layers(self.net.model)
        blocks = sorted({layer_index(name) for name in layers})
        n_sources = len(self.config.sources)
        shots = random.Random(seed).sample(range(len(train)), min(hub.shots, len(train)))
        shot_ids = [train[i] for i in shots]
        shot_targets = torch.tensor([self.index[self.train_rows[i][2]] for i in shots])

        def apply(vector: np.ndarray) -> None:
            table = vector.reshape(len(blocks), n_sources)
            row = {block: i for i, block in enumerate(blocks)}
            with torch.no_grad():
                for name, layer in layers.items():
                    layer.coef.copy_(torch.as_tensor(table[row[layer_index(name)]], dtype=torch.float32))

        def objective(vector: np.ndarray) -> float:
            apply(vector)
            with torch_threads(self.config.threads), torch.inference_mode():
                losses = []
                for start in range(0, len(shot_ids), self.config.training.eval_batch_size):
                    chunk = shot_ids[start : start + self.config.training.eval_batch_size]
                    logits = self.net.label_logits(chunk).float()
                    target = shot_targets[start : start + len(chunk)]
                    losses.append(torch.nn.functional.cross_entropy(logits, target, reduction="sum").item())
            return sum(losses) / len(shot_ids) + hub.l1 * float(np.abs(vector).mean())

        dump = self.out / "checkpoint" / "lorahub.pkl"
        history_path = self.out / "checkpoint" / "lorahub-history.json"
        clock_path = self.out / "checkpoint" / "lorahub-seconds.json"  # search time of earlier processes
        dump.parent.mkdir(parents=True, exist_ok=True)
        size = len(blocks) * n_sources
        resumed = dump.exists()
        if resumed:
            optimizer = ng.optimizers.base.Optimizer.load(str(dump))
            history: list[dict[str, Any]] = json.loads(history_path.read_text(encoding="utf-8"))
            # the history is written before the dump: it may hold evaluations the dump does not
            history = history[: optimizer.num_tell]
        else:
            parametrization = ng.p.Array(init=np.zeros(size), lower=-hub.bound, upper=hub.bound)
            parametrization.random_state = np.random.RandomState(seed)
            if hub.optimizer not in ng.optimizers.registry:
                raise ConfigError(f"compose: hub.optimizer {hub.optimizer!r} is not a nevergrad optimizer")
            optimizer = ng.optimizers.registry[hub.optimizer](parametrization=parametrization, budget=hub.budget)
            history = []
        prior = float(json.loads(clock_path.read_text(encoding="utf-8"))) if resumed and clock_path.exists() else 0.0
        started = time.perf_counter()
        while optimizer.num_tell < hub.budget:
            candidate = optimizer.ask()
            loss = objective(candidate.value)
            optimizer.tell(candidate, loss)
            history.append({"evaluation": optimizer.num_tell, "loss": loss})
            if on_step:
                on_step({"step": optimizer.num_tell, "loss": loss})
            if optimizer.num_tell % hub.dump_every == 0 or optimizer.num_tell == hub.budget:
                _replace_file(history_path, lambda tmp: tmp.write_text(json.dumps(history), encoding="utf-8"))
                _replace_file(dump, lambda tmp: optimizer.dump(str(tmp)))
                _write_json(clock_path, round(prior + time.perf_counter() - started, 1))
        best = optimizer.provide_recommendation().value
        apply(np.asarray(best))
        metrics = self._dev_score(dev)
        self._save_best(metrics)
        return {
            "resumed": resumed,
            "evaluations": optimizer.num_tell,
            "best_objective": float(objective(np.asarray(best))),
            "best_dev": metrics,
            "coefficients": np.asarray(best).reshape(len(blocks), n_sources).round(4).tolist(),
            "train_seconds": round(prior + time.perf_counter() - started, 1),
            "history": history,
        }


def _write_json(path: Path, value: Any) -> None:
    _replace_file(path, lambda tmp: tmp.write_text(json.dumps(value), encoding="utf-8"))


def _replace_file(path: Path, write: Callable[[Path], Any]) -> None:
    """``write`` a temporary file beside ``path``, then put it in its place: a kill leaves the old one."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)

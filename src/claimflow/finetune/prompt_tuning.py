"""Prompt tuning (PEFT) of a causal LM for check-worthiness, trained with a verbalizer loss.

The loss is the cross-entropy over the label words' first-token logits at the answer position
(class-weighted), so training optimizes exactly what the classifier reads at inference. The
shared :class:`~claimflow.finetune.loop.ResumableLoop` trains it: checkpoints every
``checkpoint_every`` steps and resume after a crash (checkpoints of the older prompt-tuning loop
resume too), dev F1 every ``eval_every`` steps, the best soft prompt kept with its dev threshold
(early stopping with ``patience``). Never tuned on a test split: the threshold is chosen on dev, the
final numbers are computed on ``test_split``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from claimflow.errors import ConfigError
from claimflow.finetune.loop import (
    LoopSettings,
    ResumableLoop,
    TrainerSetup,
    TrainingConfig,
    class_weights,
    save_best_model,
    write_artifact_provenance,
)
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import quiet_transformers
from claimflow.predictors.soft_prompt import SoftPromptCodec, batch_logits
from claimflow.prompts.registry import TemplateRegistry
from claimflow.types import StrictModel

log = logging.getLogger(__name__)


class DataConfig(StrictModel):
    dataset: str = "checkthat2024_en"
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str | None = "dev-test"
    train_sample: int | None = Field(None, ge=1, description="a seeded sample of the train split")
    dev_sample: int | None = Field(None, ge=1, description="a seeded sample of dev for early stopping")
    data_dir: Path | None = None


class PromptTuningConfig(TrainingConfig):
    """Everything a prompt-tuning run needs; YAML with unknown keys refused."""

    output_dir: Path
    base_model: str = "smollm2-135m-instruct"
    template: str = "checkworthiness_short@1"
    num_virtual_tokens: int = Field(20, ge=1)
    init: Literal["text", "vocab", "random"] = "text"
    init_text: str | None = Field(None, description="default: the template's instruction")
    max_claim_tokens: int = Field(96, ge=8)
    data: DataConfig = DataConfig()
    batch_size: int = Field(8, ge=1)
    eval_batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(0.03, gt=0)
    weight_decay: float = 0.0
    warmup_steps: int = Field(30, ge=0)
    max_steps: int = Field(1500, ge=1)
    eval_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(25, ge=1)
    patience: int = Field(5, ge=1, description="evaluations without dev-F1 gain before stopping")
    class_weights: Literal["balanced", "none"] = "balanced"
    seed: int = 0
    threads: int | None = None

    def loop_settings(self) -> LoopSettings:
        """The shared loop's settings, which this config keeps at its top level."""
        return LoopSettings(**{name: getattr(self, name) for name in LoopSettings.model_fields})


def _split(config: PromptTuningConfig, split: str, sample: int | None, positive: str) -> list[tuple[str, str, int]]:
    """(id, claim, label index: 0 positive / 1 negative)."""
    from claimflow.evals.datasets import load_dataset
    from claimflow.evals.labels import label_map

    mapping = label_map(config.data.dataset, "check_worthiness")
    rows = []
    for ex in load_dataset(config.data.dataset, split, config.data.data_dir):
        gold = mapping(ex.label)
        if gold is not None:
            rows.append((ex.id, ex.claim, 0 if gold == positive else 1))
    if sample is not None and sample < len(rows):
        rows = random.Random(config.seed).sample(rows, sample)
    return rows


THRESHOLDS = tuple(i / 100 for i in range(5, 96))
"""The dev-tuned threshold is one of 0.05, 0.06, ..., 0.95."""


def _f1_and_threshold(probs: Sequence[float], gold: Sequence[int]) -> tuple[float, float, float]:
    """F1 of the positive class (label index 0) at 0.5, and the dev-best of :data:`THRESHOLDS` with
    its F1 (ties: the one nearest 0.5).

    One precision-recall curve gives the F1 at every threshold: ``p >= t`` predicts what ``p >= s``
    does for the curve's smallest score ``s >= t`` (none: nothing predicted positive, F1 0). F1 is
    ``2 tp / (positives + predicted positives)``, from the curve's counts, as ``f1_score`` has it."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    y = np.array([1 if g == 0 else 0 for g in gold])
    candidates = [0.5, *THRESHOLDS]
    positives = int(y.sum())
    if positives == 0:  # no positive item: F1 is 0 at every threshold
        f1 = [0.0] * len(candidates)
    else:
        precision, recall, scores = precision_recall_curve(y, np.asarray(probs, dtype=float))
        tp = np.rint(recall * positives)
        predicted = np.rint(np.divide(tp, precision, out=np.zeros_like(tp), where=precision > 0))
        at = np.searchsorted(scores, candidates, side="left")  # the point of the smallest score >= t
        f1 = [float(2 * tp[i] / (positives + predicted[i])) if tp[i] else 0.0 for i in at]
    best = max(range(1, len(candidates)), key=lambda i: (f1[i], -abs(candidates[i] - 0.5)))
    return f1[0], candidates[best], f1[best]


def upgrade_old_checkpoint(saved: dict[str, Any], prompt_parameter: str) -> dict[str, Any]:
    """A checkpoint of prompt tuning's own loop before :class:`ResumableLoop` (the run state at the top
    level, the soft prompt under ``prompt``, the best dev F1 and threshold as ``best_f1`` and
    ``best_threshold``) in the shared loop's layout, so such a run resumes; others are returned as they are."""
    if "state" in saved:
        return saved
    state = {k: v for k, v in saved.items() if k not in ("prompt", "optimizer", "torch_rng")}
    best_f1, threshold = state.pop("best_f1"), state.pop("best_threshold")
    evals = [h for h in state["history"] if h["step"] == state["best_step"] and "dev_f1_tuned" in h]
    best_metrics: dict[str, Any] = {}
    if evals:
        best_metrics = {"score": best_f1, "metric": "dev_f1_tuned", **evals[-1], "threshold": threshold}
        del best_metrics["step"]
    state.update(best_score=best_f1 if best_metrics else -math.inf, best_metrics=best_metrics)
    return {
        "state": state,
        "params": {prompt_parameter: saved["prompt"]},
        "optimizer": saved["optimizer"],
        "torch_rng": saved["torch_rng"],
    }


class PromptTuner:
    def __init__(self, config: PromptTuningConfig, *, store: ModelStore | None = None) -> None:
        import torch
        from peft import PromptTuningConfig as PeftPromptTuningConfig
        from peft import PromptTuningInit, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.torch = torch
        self.setup = TrainerSetup.prepare(
            config.base_model, config.output_dir, threads=config.threads, seed=config.seed, store=store
        )
        self.store, self.resolved = self.setup.store, self.setup.base
        folder = hf_checkpoint(self.resolved, self.store)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.template = TemplateRegistry().get(config.template)
        if self.template.inputs != ("claim",) or len(self.template.labels) != 2:
            raise ConfigError(
                f"prompt tuning needs a two-label template with one input 'claim', not {self.template.ref}"
            )
        self.codec = SoftPromptCodec(self.tokenizer, self.template, config.max_claim_tokens)
        with self.setup.building(), quiet_transformers():
            base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            init = {
                "text": PromptTuningInit.TEXT,
                "vocab": PromptTuningInit.SAMPLE_VOCAB,
                "random": PromptTuningInit.RANDOM,
            }
            init_text = config.init_text or self.template.user.split("Text:")[0].replace("Task:", "").strip()
            peft_config = PeftPromptTuningConfig(
                task_type="CAUSAL_LM",
                num_virtual_tokens=config.num_virtual_tokens,
                prompt_tuning_init=init[config.init],
                prompt_tuning_init_text=init_text if config.init == "text" else None,
                tokenizer_name_or_path=str(folder) if config.init == "text" else None,
            )
            self.model: Any = get_peft_model(base, peft_config)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.out = self.setup.output_dir
        self.init_text = init_text

    # --- data ----------------------------------------------------------------------------------

    def encode(self, rows: Sequence[tuple[str, str, int]]) -> list[tuple[list[int], int]]:
        return [(self.codec.prompt_ids({"claim": claim}), label) for _, claim, label in rows]

    # --- evaluation ------------------------------------------------------------------------------

    def positive_probs(self, encoded: Sequence[tuple[list[int], int]]) -> list[float]:
        torch = self.torch
        self.model.eval()
        probs: list[float] = []
        size = self.config.eval_batch_size
        with torch.inference_mode():
            for start in range(0, len(encoded), size):
                seqs = [ids for ids, _ in encoded[start : start + size]]
                logits = batch_logits(self.model, seqs, self.pad_id, self.config.num_virtual_tokens)
                probs += torch.softmax(logits[:, self.codec.label_token_ids].float(), dim=-1)[:, 0].tolist()
        self.model.train()
        return probs

    # --- training --------------------------------------------------------------------------------

    def _save_best(self, metrics: dict[str, Any]) -> None:
        save_best_model(
            self.model, self.out, metrics, extra_json={"threshold.json": {"threshold": metrics["threshold"]}}
        )

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train (or resume) and return the run summary; the best soft prompt is in ``output_dir/best``."""
        torch, cfg = self.torch, self.config
        positive = self.template.labels[0]
        t0 = time.perf_counter()
        train_rows = _split(cfg, cfg.data.train_split, cfg.data.train_sample, positive)
        dev_rows = _split(cfg, cfg.data.dev_split, cfg.data.dev_sample, positive)
        train, dev = self.encode(train_rows), self.encode(dev_rows)
        n_pos = sum(1 for _, y in train if y == 0)
        weights = class_weights(torch.tensor([float(n_pos), float(len(train) - n_pos)]), cfg.class_weights)
        targets = torch.tensor([y for _, y in train])
        dev_gold = [y for _, y in dev]

        def batch_loss(indices: Sequence[int]) -> Any:
            logits = batch_logits(self.model, [train[i][0] for i in indices], self.pad_id, cfg.num_virtual_tokens)
            target = targets[list(indices)]
            return torch.nn.functional.cross_entropy(logits[:, self.codec.label_token_ids], target, weight=weights)

        def evaluate() -> dict[str, Any]:
            f1_half, threshold, f1_best = _f1_and_threshold(self.positive_probs(dev), dev_gold)
            log.info("dev F1 %.4f (tuned %.4f @ %.2f)", f1_half, f1_best, threshold)
            return {
                "score": f1_best,
                "metric": "dev_f1_tuned",
                "dev_f1": f1_half,
                "dev_f1_tuned": f1_best,
                "threshold": threshold,
            }

        (prompt,) = (name for name, p in self.model.named_parameters() if p.requires_grad)
        loop = ResumableLoop(
            self.model,
            cfg.loop_settings(),
            self.out,
            upgrade_checkpoint=lambda s: upgrade_old_checkpoint(s, prompt),
            threads=self.setup.threads,
        )
        summary = loop.run(len(train), batch_loss, evaluate, self._save_best, on_step)
        best = summary["best_dev"]
        summary.update(
            best_dev_f1=best.get("score", -1.0),
            threshold=best.get("threshold", 0.5),
            wall_seconds_this_process=round(time.perf_counter() - t0, 1),
            train_size=len(train),
            train_positive=n_pos,
            dev_size=len(dev),
        )
        self._write_artifact(summary)
        return summary

    def _write_artifact(self, summary: dict[str, Any]) -> None:
        """``output_dir/best`` + provenance.json: the folder a SoftPromptClassifier loads."""
        best = self.out / "best"
        if not (best / "adapter_config.json").exists():
            self._save_best({"threshold": 0.5})
        threshold = json.loads((best / "threshold.json").read_text(encoding="utf-8"))["threshold"]
        fields = {
            "kind": "soft_prompt",
            "base_model": {"name": self.resolved.name, "sha256": self.resolved.sha256, "source": self.resolved.source},
            "template": self.template.ref,
            "num_virtual_tokens": self.config.num_virtual_tokens,
            "init": self.config.init,
            "init_text": self.init_text,
            "max_claim_tokens": self.config.max_claim_tokens,
            "threshold": threshold,
            "labels": list(self.template.labels),
        }
        write_artifact_provenance(
            self.out, fields, config=self.config, summary=summary, command="prompt-tuning", gold_labels_in_inputs=None
        )


def evaluate_artifact(artifact: Path, config: PromptTuningConfig, split: str) -> dict[str, Any]:
    """F1(Yes) with a bootstrap CI of the artifact on ``split`` (e.g. dev-test), at its dev threshold."""
    from claimflow.evals.metrics import check_worthiness_metrics, positive_f1
    from claimflow.evals.stats import bootstrap_ci
    from claimflow.predictors.soft_prompt import SoftPromptClassifier

    classifier = SoftPromptClassifier(artifact, threads=config.threads)
    positive, negative = classifier.labels
    rows = _split(config, split, None, positive)
    start = time.perf_counter()
    preds = [s.label for s in classifier.predict([{"claim": claim} for _, claim, _ in rows])]
    seconds = time.perf_counter() - start
    gold = [positive if y == 0 else negative for *_, y in rows]
    metrics = check_worthiness_metrics(gold, preds, positive=positive, negative=negative)
    low, high = bootstrap_ci(gold, preds, positive_f1(positive))
    return {
        "split": split,
        "n": len(rows),
        **metrics.model_dump(),
        "f1_ci95": [low, high],
        "seconds": seconds,
    }

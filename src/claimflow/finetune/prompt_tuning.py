"""Prompt tuning (PEFT) of a causal LM for check-worthiness, trained with a verbalizer loss.

The loss is the cross-entropy over the label words' first-token logits at the answer position
(class-weighted), so training optimizes exactly what the classifier reads at inference. The run
checkpoints every ``checkpoint_every`` steps (soft prompt, optimizer, data order, RNG, history)
and resumes from the last checkpoint after a crash; dev F1 is evaluated every ``eval_every``
steps and the best soft prompt is kept (early stopping with ``patience``). Never tuned on a test
split: the threshold is chosen on dev, the final numbers are computed on ``test_split``.
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

from pydantic import BaseModel, ConfigDict, Field

from claimflow.errors import ConfigError
from claimflow.finetune.loop import TrainingConfig, write_artifact_provenance
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import quiet_transformers
from claimflow.predictors.soft_prompt import SoftPromptCodec, batch_logits
from claimflow.prompts.registry import TemplateRegistry

log = logging.getLogger(__name__)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


def _f1_and_threshold(probs: Sequence[float], gold: Sequence[int]) -> tuple[float, float, float]:
    """F1 of the positive class at 0.5, and the dev-best threshold with its F1."""
    from sklearn.metrics import f1_score

    y = [1 if g == 0 else 0 for g in gold]

    def f1_at(t: float) -> float:
        return float(f1_score(y, [1 if p >= t else 0 for p in probs], zero_division=0.0))

    best_t = max((i / 100 for i in range(5, 96)), key=lambda t: (f1_at(t), -abs(t - 0.5)))  # ties: nearest 0.5
    return f1_at(0.5), best_t, f1_at(best_t)


class PromptTuner:
    def __init__(self, config: PromptTuningConfig, *, store: ModelStore | None = None) -> None:
        import torch
        from peft import PromptTuningConfig as PeftPromptTuningConfig
        from peft import PromptTuningInit, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.torch = torch
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.store = store or ModelStore()
        self.resolved = self.store.resolve(config.base_model)
        folder = hf_checkpoint(self.resolved, self.store)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.template = TemplateRegistry().get(config.template)
        if self.template.inputs != ("claim",) or len(self.template.labels) != 2:
            raise ConfigError(
                f"prompt tuning needs a two-label template with one input 'claim', not {self.template.ref}"
            )
        self.codec = SoftPromptCodec(self.tokenizer, self.template, config.max_claim_tokens)
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
        with quiet_transformers():
            self.model: Any = get_peft_model(base, peft_config)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.out = config.output_dir
        self.out.mkdir(parents=True, exist_ok=True)
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

    # --- checkpoints -------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint" / "state.pt"

    def _save_checkpoint(self, state: dict[str, Any], optimizer: Any) -> None:
        torch = self.torch
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            **state,
            "prompt": self.model.get_prompt_embedding_to_save("default").detach().clone(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

    def _set_prompt(self, tensor: Any) -> None:
        with self.torch.no_grad():
            self.model.prompt_encoder["default"].embedding.weight.copy_(tensor)

    def _save_best(self, threshold: float) -> None:
        best = self.out / "best"
        self.model.save_pretrained(str(best))
        (best / "README.md").unlink(missing_ok=True)  # PEFT's empty model-card template
        (best / "threshold.json").write_text(json.dumps({"threshold": threshold}), encoding="utf-8")

    # --- training --------------------------------------------------------------------------------

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train (or resume) and return the run summary; the best soft prompt is in ``output_dir/best``."""
        torch, cfg = self.torch, self.config
        positive = self.template.labels[0]
        t0 = time.perf_counter()
        train_rows = _split(cfg, cfg.data.train_split, cfg.data.train_sample, positive)
        dev_rows = _split(cfg, cfg.data.dev_split, cfg.data.dev_sample, positive)
        train, dev = self.encode(train_rows), self.encode(dev_rows)
        n_pos = sum(1 for _, y in train if y == 0)
        weights = (
            torch.tensor([len(train) / (2 * max(n_pos, 1)), len(train) / (2 * max(len(train) - n_pos, 1))])
            if cfg.class_weights == "balanced"
            else torch.ones(2)
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: (
                min(1.0, (s + 1) / max(cfg.warmup_steps, 1))
                * max(0.0, 0.5 * (1 + math.cos(math.pi * min(s, cfg.max_steps) / cfg.max_steps)))
            ),
        )
        state: dict[str, Any] = {"step": 0, "best_f1": -1.0, "best_step": 0, "best_threshold": 0.5, "bad_evals": 0}
        state["history"] = []
        state["train_seconds"] = 0.0
        resumed = False
        if self.checkpoint_path.exists():
            saved = torch.load(self.checkpoint_path, weights_only=False)
            self._set_prompt(saved["prompt"])
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["torch_rng"])
            state = {k: v for k, v in saved.items() if k not in ("prompt", "optimizer", "torch_rng")}
            for _ in range(state["step"]):
                schedule.step()
            resumed = True
            log.info("resumed from step %d", state["step"])
        per_epoch = math.ceil(len(train) / cfg.batch_size)
        self.model.train()
        step_start = time.perf_counter()
        while state["step"] < cfg.max_steps and state["bad_evals"] < cfg.patience:
            step = state["step"]
            epoch, offset = divmod(step, per_epoch)
            order = list(range(len(train)))
            random.Random(cfg.seed + epoch).shuffle(order)  # the data order is a function of the step
            batch = [train[i] for i in order[offset * cfg.batch_size : (offset + 1) * cfg.batch_size]]
            logits = batch_logits(self.model, [ids for ids, _ in batch], self.pad_id, cfg.num_virtual_tokens)
            target = torch.tensor([y for _, y in batch])
            loss = torch.nn.functional.cross_entropy(logits[:, self.codec.label_token_ids], target, weight=weights)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            state["step"] = step + 1
            state["history"].append({"step": step + 1, "loss": loss.item()})
            if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.max_steps:
                probs = self.positive_probs(dev)
                f1_half, threshold, f1_best = _f1_and_threshold(probs, [y for _, y in dev])
                state["history"].append(
                    {"step": state["step"], "dev_f1": f1_half, "dev_f1_tuned": f1_best, "threshold": threshold}
                )
                if f1_best > state["best_f1"]:
                    state.update(best_f1=f1_best, best_step=state["step"], best_threshold=threshold, bad_evals=0)
                    self._save_best(threshold)
                else:
                    state["bad_evals"] += 1
                log.info("step %d dev F1 %.4f (tuned %.4f @ %.2f)", state["step"], f1_half, f1_best, threshold)
            if state["step"] % cfg.checkpoint_every == 0 or state["step"] == cfg.max_steps:
                state["train_seconds"] += time.perf_counter() - step_start
                step_start = time.perf_counter()
                self._save_checkpoint(state, optimizer)
            if on_step:
                on_step({"step": state["step"], "loss": loss.item()})
        state["train_seconds"] += time.perf_counter() - step_start
        self._save_checkpoint(state, optimizer)
        summary = {
            "resumed": resumed,
            "steps": state["step"],
            "best_step": state["best_step"],
            "best_dev_f1": state["best_f1"],
            "threshold": state["best_threshold"],
            "train_seconds": state["train_seconds"],
            "wall_seconds_this_process": time.perf_counter() - t0,
            "train_size": len(train),
            "train_positive": n_pos,
            "dev_size": len(dev),
            "history": state["history"],
        }
        self._write_artifact(summary)
        return summary

    def _write_artifact(self, summary: dict[str, Any]) -> None:
        """``output_dir/best`` + provenance.json: the folder a SoftPromptClassifier loads."""
        best = self.out / "best"
        if not (best / "adapter_config.json").exists():
            self._save_best(0.5)
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
    from claimflow.predictors.soft_prompt import SoftPromptClassifier

    classifier = SoftPromptClassifier(artifact, threads=config.threads)
    positive, negative = classifier.labels
    rows = _split(config, split, None, positive)
    start = time.perf_counter()
    preds = [s.label for s in classifier.predict([{"claim": claim} for _, claim, _ in rows])]
    seconds = time.perf_counter() - start
    gold = [positive if y == 0 else negative for *_, y in rows]
    metrics = check_worthiness_metrics(gold, preds, positive=positive, negative=negative)
    import numpy as np
    from scipy import stats as sps

    g, p = np.asarray(gold, dtype=object), np.asarray(preds, dtype=object)
    f1 = positive_f1(positive)
    ci = sps.bootstrap(
        (np.arange(len(gold)),),
        lambda i: f1(list(g[i.astype(int)]), list(p[i.astype(int)])),
        n_resamples=2000,
        vectorized=False,
        method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    return {
        "split": split,
        "n": len(rows),
        **metrics.model_dump(),
        "f1_ci95": [float(ci.low), float(ci.high)],
        "seconds": seconds,
    }

"""Prompt A/B runs: variants of one classify stage over the same dataset items.

A spec (YAML) names a stage, a dataset split and sample, the backends, and the variants (template,
demos, verbalizer, backend). ``run_ab`` predicts every (variant, item) once: each prediction is
committed to the SQLite run store as it is made, an interrupted run resumes without redoing
finished items, and model calls are cached by content so identical prompts are never recomputed
across variants or runs. When a variant is a multi-task evidence model, only the claims it held out
of training (its HealthVer / Climate-FEVER split) are scored, for every variant alike.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from claimflow._version import __version__
from claimflow.config import BackendConfig, VerbalizerKind, validate_config
from claimflow.errors import ConfigError
from claimflow.evals.cache import CachingBackend
from claimflow.evals.datasets import Example, load_dataset, load_jsonl
from claimflow.evals.labels import label_map
from claimflow.evals.store import PredictionRow, RunStore
from claimflow.io import load_yaml
from claimflow.llm.base import Backend, Engine
from claimflow.models.store import ModelStore
from claimflow.predictors import PromptClassifier
from claimflow.prompts.demos import Demo, DemoSelector
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate
from claimflow.types import StrictModel

if TYPE_CHECKING:
    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.multitask import TaskHead
    from claimflow.predictors.soft_prompt import SoftPromptClassifier

Stage = Literal["check_worthiness", "evidence_stance", "veracity"]
_TASK = {"check_worthiness": "check_worthiness", "evidence_stance": "stance", "veracity": "veracity"}


class DatasetSpec(StrictModel):
    name: str | None = Field(None, description="a registered dataset (claimflow.evals.datasets.DATASETS)")
    split: str = "dev"
    path: Path | None = Field(None, description="or any JSONL file in the common schema")
    sample: int | None = Field(None, ge=1, description="a seeded random sample of this many items")
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.name is None) == (self.path is None):
            raise ValueError("dataset: give exactly one of name or path")
        return self


class VariantDemos(StrictModel):
    k: int = Field(ge=0)
    selector: Literal["random", "balanced", "knn", "mmr"] = "random"
    order: Literal["as_sampled", "similarity_ascending", "label_interleaved"] = "as_sampled"
    style: Literal["chat", "inline"] = "chat"
    seed: int = 0
    mmr_lambda: float = 0.5


class Variant(StrictModel):
    name: str = Field(pattern=r"^[\w.\-]+$")
    template: str | None = Field(None, description="id@version (a prompted model); or soft_prompt, or encoder")
    soft_prompt: Path | None = Field(None, description="a soft-prompt artifact (its template is recorded in it)")
    encoder: Path | None = Field(
        None,
        description="an encoder-classifier artifact (claimflow finetune classifier) or a multi-task one "
        "(claimflow finetune multitask; the head of the spec's stage is used)",
    )
    backend: str = "default"
    verbalizer: VerbalizerKind = "logit"
    calibration: Literal["none", "contextual"] = "none"
    demos: VariantDemos | None = None
    label_map: dict[str, str] = Field(default_factory=dict, description="template label -> gold label")


class ABSpec(StrictModel):
    """A/B run specification; see ``examples/ab_checkworthiness.yaml``."""

    name: str = Field(pattern=r"^[\w.\-]+$")
    stage: Stage
    dataset: DatasetSpec
    demo_pool: DatasetSpec | None = Field(None, description="labelled pool for n-shot demos (a train split)")
    backends: dict[str, BackendConfig] = Field(default_factory=lambda: {"default": BackendConfig()})
    variants: tuple[Variant, ...] = Field(min_length=1)
    baseline: str | None = Field(None, description="variant the others are compared to (default: the first)")
    metric: Literal["positive_f1", "macro_f1", "accuracy"] | None = None
    bootstrap_resamples: int = Field(2000, ge=100)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ABSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique, got {names}")
        for v in self.variants:
            if sum(x is not None for x in (v.template, v.soft_prompt, v.encoder)) != 1:
                raise ValueError(f"variant {v.name}: give exactly one of template, soft_prompt or encoder")
            if v.backend not in self.backends:
                raise ValueError(f"variant {v.name}: no backend named {v.backend!r}")
            if v.demos and v.demos.k > 0 and self.demo_pool is None:
                raise ValueError(f"variant {v.name} asks for demos but the spec has no demo_pool")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not a variant name")
        return self

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0].name

    @property
    def main_metric(self) -> str:
        return self.metric or ("positive_f1" if self.stage == "check_worthiness" else "macro_f1")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ABSpec:
        data = load_yaml(path, "A/B spec", mapping=True)
        return validate_config(cls, data, f"A/B spec {path}")


@dataclass(frozen=True)
class Item:
    """One prediction target: the template inputs and the gold label in the stage's label set."""

    id: str
    inputs: dict[str, Any]
    gold: str


def _examples(spec: DatasetSpec, data_dir: Path | None) -> list[Example]:
    if spec.path is not None:
        return load_jsonl(spec.path)
    assert spec.name is not None
    return load_dataset(spec.name, spec.split, data_dir)


def trained_on_claims(spec: ABSpec) -> set[str] | None:
    """The claims of ``spec``'s dataset that every multi-task variant held out of its training (its
    HealthVer / Climate-FEVER split, from the artifact's provenance); ``None`` when no variant has one."""
    keep: set[str] | None = None
    for variant in spec.variants:
        if variant.encoder is None or spec.dataset.name is None:
            continue
        try:
            provenance = json.loads((variant.encoder / "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # reported when the variant loads
        held = provenance.get("data", {}).get("held_out_claims", {}).get(spec.dataset.name)
        if provenance.get("kind") == "multitask_encoder" and held is not None:
            keep = set(held) if keep is None else keep & set(held)
    return keep


def items_for(
    stage: Stage, spec: DatasetSpec, data_dir: Path | None, *, only_claims: set[str] | None = None
) -> list[Item]:
    """The stage's items from a dataset, gold labels mapped to the pipeline label set; a sample is
    drawn with ``spec.seed`` (the same items for every variant). ``only_claims`` keeps those claims
    (the ones a trained variant held out of its training) before sampling."""
    examples = _examples(spec, data_dir)
    if only_claims is not None:
        examples = [ex for ex in examples if ex.id in only_claims]
    source = spec.name or "jsonl"
    items: list[Item] = []
    for ex in examples:
        if stage == "evidence_stance":
            for i, (sentence, raw) in enumerate(zip(ex.evidence, ex.evidence_labels or [], strict=False)):
                gold = _mapped(source, "stance", raw)
                if gold is not None:
                    items.append(Item(f"{ex.id}#{i}", {"claim": ex.claim, "sentence": sentence}, gold))
            continue
        gold = _mapped(source, _TASK[stage], ex.label)
        if gold is not None:
            items.append(Item(ex.id, {"claim": ex.claim, "evidence": list(ex.evidence)}, gold))
    if spec.sample is not None and spec.sample < len(items):
        items = random.Random(spec.seed).sample(items, spec.sample)
    return items


def _mapped(dataset: str, task: Any, label: str | None) -> str | None:
    if dataset == "jsonl":
        return label
    return label_map(dataset, task)(label)


def demo_pool(template: PromptTemplate, items: Sequence[Item]) -> list[Demo]:
    """Pool items as demos for ``template``, their gold labels expressed in the template's labels."""
    to_template = {gold: gold for gold in template.labels}
    demos = []
    for item in items:
        label = to_template.get(item.gold)
        if label is not None:
            demos.append(Demo(item.id, {k: item.inputs[k] for k in template.inputs}, label))
    return demos


@dataclass
class RunSummary:
    run_id: str
    resumed: bool
    predicted: dict[str, int]
    skipped: dict[str, int]
    seconds: float


def start_ab_run(
    spec: ABSpec, store: RunStore, data_dir: Path | None, git_commit: str | None
) -> tuple[list[Item], bool]:
    """The run's items, and whether ``store`` already held the run (a resume; a changed spec is
    refused). The items come first: a spec naming a missing dataset or split fails before its run
    is recorded."""
    items = items_for(spec.stage, spec.dataset, data_dir, only_claims=trained_on_claims(spec))
    resumed = not store.start_run(
        spec.name,
        spec.model_dump(mode="json"),
        __version__,
        git_commit,
        normalize=lambda stored: ABSpec.model_validate(stored).model_dump(mode="json"),
    )
    return items, resumed


def run_ab(
    spec: ABSpec,
    store: RunStore,
    *,
    data_dir: Path | None = None,
    backends: Mapping[str, Backend] | None = None,
    registry: TemplateRegistry | None = None,
    model_store: ModelStore | None = None,
    git_commit: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 1,
) -> RunSummary:
    """Predict every (variant, item) not yet in ``store``; see the module docstring.

    Items are predicted ``batch_size`` at a time (one batched call to the classifier: the encoders
    score a batch in one pass, a prompted model gets the batch's prompts at once), each row stored as
    soon as its batch is done, so an interruption loses at most one batch; a row's ``seconds``,
    ``model_calls`` and ``prompt_tokens`` are its batch's, shared evenly. ``batch_size=1`` (the
    default here; ``claimflow eval run`` batches 16) is the item-at-a-time loop."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    start = time.perf_counter()
    registry = registry or TemplateRegistry()
    items, resumed = start_ab_run(spec, store, data_dir, git_commit)
    loaded: dict[str, Backend] = dict(backends or {})
    predicted: dict[str, int] = {}
    skipped: dict[str, int] = {}
    pool_items: list[Item] = []
    for variant in spec.variants:
        done = store.done(spec.name, variant.name)
        todo = [item for item in items if item.id not in done]
        skipped[variant.name], predicted[variant.name] = len(items) - len(todo), 0
        if on_progress:
            on_progress(variant.name, len(items) - len(todo), len(items))
        if not todo:
            continue
        predictor = VariantPredictor(
            spec,
            variant,
            data_dir=data_dir,
            registry=registry,
            model_store=model_store,
            backends=loaded,
            call_cache=store,
            pool_items=pool_items,
        )
        for first in range(0, len(todo), batch_size):
            for row in predictor.rows(todo[first : first + batch_size]):
                store.add(spec.name, row)
                predicted[variant.name] += 1
            if on_progress:
                on_progress(variant.name, skipped[variant.name] + predicted[variant.name], len(items))
    return RunSummary(spec.name, resumed, predicted, skipped, time.perf_counter() - start)


class VariantPredictor:
    """One variant's classifier, built once (its backend from ``backends`` or made from the spec, the
    model calls cached in ``call_cache`` when given); :meth:`rows` predicts a chunk of items in one
    batched call into run-store rows."""

    def __init__(
        self,
        spec: ABSpec,
        variant: Variant,
        *,
        data_dir: Path | None = None,
        registry: TemplateRegistry | None = None,
        model_store: ModelStore | None = None,
        backends: dict[str, Backend] | None = None,
        call_cache: RunStore | None = None,
        pool_items: list[Item] | None = None,
    ) -> None:
        registry = registry or TemplateRegistry()
        loaded = backends if backends is not None else {}
        self.variant = variant
        self.engine: Engine
        self.classifier: PromptClassifier | SoftPromptClassifier | EncoderClassifier | TaskHead
        if variant.soft_prompt is not None:
            from claimflow.predictors.soft_prompt import SoftPromptClassifier

            self.classifier = self.engine = SoftPromptClassifier(
                variant.soft_prompt, store=model_store, registry=registry
            )
            self.fields = self.classifier.template.inputs
            self.prompt_ref = f"{self.classifier.template.ref}+softprompt:{variant.soft_prompt.name}"
        elif variant.encoder is not None:
            from claimflow.predictors.trained import load_trained_classifier

            self.classifier = self.engine = load_trained_classifier(
                variant.encoder, _TASK[spec.stage], store=model_store
            )
            self.fields = self.classifier.inputs
            self.prompt_ref = f"encoder:{variant.encoder.name}"
        else:
            assert variant.template is not None
            template = registry.get(variant.template)
            self.fields, self.prompt_ref = template.inputs, template.ref
            self.engine = backend = _backend(variant.backend, spec, loaded, call_cache, model_store)
            pool = pool_items if pool_items is not None else []
            self.classifier = _classifier(spec, variant, template, backend, data_dir, model_store, pool)

    def rows(self, chunk: Sequence[Item]) -> list[PredictionRow]:
        """The run-store rows of ``chunk``'s items; the batched call's time, model calls and prompt
        tokens are shared evenly by its items."""
        engine, variant = self.engine, self.variant
        calls_before, tokens_before = engine.stats.calls, engine.stats.prompt_tokens
        t0 = time.perf_counter()
        predictions = self.classifier.predict(
            [{k: item.inputs[k] for k in self.fields} for item in chunk], ids=[item.id for item in chunk]
        )
        share = len(chunk)
        seconds = (time.perf_counter() - t0) / share
        calls = (engine.stats.calls - calls_before) // share
        tokens = (engine.stats.prompt_tokens - tokens_before) // share
        rows = []
        for item, scores in zip(chunk, predictions, strict=True):
            label = variant.label_map.get(scores.label, scores.label) if scores.label is not None else None
            probabilities: dict[str, float] = {}
            for name, p in scores.probabilities.items():
                mapped = variant.label_map.get(name, name)
                probabilities[mapped] = probabilities.get(mapped, 0.0) + p
            rows.append(
                PredictionRow(
                    variant=variant.name,
                    item_id=item.id,
                    gold=item.gold,
                    label=label,
                    probabilities=probabilities,
                    parse_error=scores.parse_error,
                    raw_output=scores.raw_output,
                    demo_ids=scores.demo_ids,
                    prompt_ref=self.prompt_ref,
                    seconds=seconds,
                    model_calls=calls,
                    prompt_tokens=tokens,
                )
            )
        return rows


def _backend(
    key: str, spec: ABSpec, loaded: dict[str, Backend], store: RunStore | None, model_store: ModelStore | None
) -> Backend:
    if key not in loaded:
        from claimflow.llm.factory import make_backend

        backend = make_backend(spec.backends[key], model_store or ModelStore())
        loaded[key] = CachingBackend(backend, store) if store is not None else backend
    return loaded[key]


def _classifier(
    spec: ABSpec,
    variant: Variant,
    template: PromptTemplate,
    backend: Backend,
    data_dir: Path | None,
    model_store: ModelStore | None,
    pool_items: list[Item],
) -> PromptClassifier:
    selector, k, style = None, 0, "chat"
    if variant.demos and variant.demos.k > 0:
        assert spec.demo_pool is not None
        if not pool_items:  # loaded once per run, shared by every n-shot variant
            pool_items.extend(items_for(spec.stage, spec.demo_pool, data_dir))
        pool = demo_pool(template, pool_items)
        embedder = None
        if variant.demos.selector in ("knn", "mmr") or variant.demos.order == "similarity_ascending":
            from claimflow.prompts.embeddings import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(store=model_store)
        selector = DemoSelector(
            pool,
            template.inputs,
            selector=variant.demos.selector,
            order=variant.demos.order,
            seed=variant.demos.seed,
            mmr_lambda=variant.demos.mmr_lambda,
            embedder=embedder,
        )
        k, style = variant.demos.k, variant.demos.style
    classifier = PromptClassifier(
        template,
        backend,
        verbalizer=variant.verbalizer,
        demos=selector,
        n_shots=k,
        demo_style=style,  # type: ignore[arg-type]
    )
    if variant.calibration == "contextual":
        classifier.calibrate()
    return classifier


def gold_and_predictions(
    store: RunStore, run_id: str, variants: Sequence[str]
) -> tuple[list[str], dict[str, list[Any]]]:
    """Aligned gold labels and per-variant rows over the items every variant has predicted."""
    rows = {v: {r.item_id: r for r in store.predictions(run_id, v)} for v in variants}
    common = sorted(set.intersection(*(set(r) for r in rows.values()))) if rows else []
    gold = [rows[variants[0]][i].gold or "" for i in common]
    return gold, {v: [rows[v][i] for i in common] for v in variants}

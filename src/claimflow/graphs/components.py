"""What the nodes call, resolved and validated from the config at build time; models load lazily."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimflow.config import BackendConfig, PipelineConfig, StageName
from claimflow.errors import GraphBuildError, TemplateError
from claimflow.llm.base import Backend, Engine
from claimflow.models.store import ModelStore
from claimflow.predictors import PromptClassifier, PromptGenerator
from claimflow.prompts.demos import DemoSelector, load_pool
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate

if TYPE_CHECKING:
    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.multitask import MultitaskEncoder, TaskHead
    from claimflow.predictors.soft_prompt import SoftPromptClassifier
    from claimflow.predictors.stance_aggregate import StanceAggregator, StanceFeatureClassifier

    TrainedPredictor = SoftPromptClassifier | EncoderClassifier | TaskHead | StanceAggregator | StanceFeatureClassifier

BackendFactory = Callable[[BackendConfig, ModelStore], Backend]


SHIPPED_ARTIFACTS: dict[tuple[str, str], str] = {
    ("check_worthiness", "soft_prompt"): "checkworthiness-softprompt",
    ("check_worthiness", "encoder"): "checkworthiness-encoder",
    ("veracity", "encoder"): "veracity-encoder",
    ("veracity", "stance_features"): "veracity-stance-features",
    ("evidence_stance", "encoder"): "evidence-multitask",
    ("check_worthiness", "multitask"): "evidence-multitask",
}
"""(stage, predictor) -> the artifact folder shipped in the package for it (see its provenance.json)."""
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "encoder-delta.safetensors", "model.json")
HEADS_FILE = "heads.safetensors"


def shipped_artifact(name: str) -> Path:
    return Path(str(resources.files("claimflow") / "artifacts" / name))


def default_soft_prompt() -> Path:
    """The soft prompt shipped in the package (trained on CheckThat! 2024; see its provenance.json)."""
    return shipped_artifact(SHIPPED_ARTIFACTS[("check_worthiness", "soft_prompt")])


STANCE_READERS = ("aggregate", "stance_features")
"""Veracity predictors that read the evidence stances, not text."""

STAGE_INPUTS: dict[str, set[str]] = {
    "check_worthiness": {"claim"},
    "evidence_stance": {"claim", "sentence"},
    "justify": {"claim", "evidence"},
}
JUSTIFICATION_INPUTS = {"support_justification", "refute_justification"}


def _expect(template: PromptTemplate, stage: str, kind: str, allowed: set[str]) -> None:
    if template.uses_gold:
        raise GraphBuildError(
            f"{stage}: template {template.ref} reads gold labels (uses_gold: true) and cannot be used for inference"
        )
    if template.kind != kind:
        raise GraphBuildError(f"{stage}: template {template.ref} is a {template.kind} template, expected {kind}")
    unknown = set(template.inputs) - allowed
    if unknown:
        raise GraphBuildError(
            f"{stage}: template {template.ref} needs {sorted(unknown)}, which this pipeline does not provide "
            f"(available: {sorted(allowed)})"
        )


class Components:
    """Templates (resolved now), backends and predictors (created on first use)."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        registry: TemplateRegistry | None = None,
        store: ModelStore | None = None,
        backends: Mapping[str, Backend] | None = None,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        self.config = config
        self.store = store or ModelStore()
        self.registry = registry or TemplateRegistry(config.template_dirs)
        self._backends: dict[str, Backend] = dict(backends or {})
        self._backend_factory = backend_factory
        self.templates = self._resolve_templates()
        self._classifiers: dict[str, PromptClassifier] = {}
        self._generators: dict[str, PromptGenerator] = {}
        self._trained: dict[StageName, TrainedPredictor] = {}
        self._multitask: dict[str, MultitaskEncoder] = {}

    def _get(self, key: str, ref: str) -> PromptTemplate:
        try:
            return self.registry.get(ref)
        except TemplateError as exc:
            raise GraphBuildError(f"{key}: {exc}") from exc

    def _resolve_templates(self) -> dict[str, PromptTemplate]:
        cfg, stages = self.config, set(self.config.stages)
        out: dict[str, PromptTemplate] = {}
        if "check_worthiness" in stages:
            labels = self._check_trained("check_worthiness", STAGE_INPUTS["check_worthiness"])
            if cfg.check_worthiness.predictor == "multitask":
                labels = self._check_multitask("check_worthiness", "claim")
            elif cfg.check_worthiness.predictor != "encoder":
                ref = cfg.check_worthiness.template
                if cfg.check_worthiness.predictor == "soft_prompt":
                    ref = self.artifact_provenance("check_worthiness")["template"]
                t = out["check_worthiness"] = self._get("check_worthiness.template", ref)
                _expect(t, "check_worthiness", "classify", STAGE_INPUTS["check_worthiness"])
                labels = t.labels
            if cfg.check_worthiness.positive_label not in labels:
                raise GraphBuildError(
                    f"check_worthiness.positive_label {cfg.check_worthiness.positive_label!r} is not a label of "
                    f"the {cfg.check_worthiness.predictor} predictor ({list(labels)})"
                )
        if "evidence_stance" in stages:
            if cfg.evidence_stance.predictor == "prompt":
                t = out["evidence_stance"] = self._get("evidence_stance.template", cfg.evidence_stance.template)
                _expect(t, "evidence_stance", "classify", STAGE_INPUTS["evidence_stance"])
                labels, where = t.labels, t.ref
            else:
                labels, where = self._check_multitask("evidence_stance", "stance"), "the stance head"
            for key in ("support_label", "refute_label"):
                if getattr(cfg.evidence_stance, key) not in labels:
                    raise GraphBuildError(f"evidence_stance.{key} is not a label of {where} ({list(labels)})")
        if "justify" in stages:
            if "evidence_stance" not in stages:
                raise GraphBuildError("stages: 'justify' needs 'evidence_stance' (it writes from the stances)")
            for side in ("support", "refute"):
                key = f"justify.{side}_template"
                t = out[f"justify_{side}"] = self._get(key, getattr(cfg.justify, f"{side}_template"))
                _expect(t, key, "generate", STAGE_INPUTS["justify"])
        if "veracity" in stages:
            if cfg.veracity.predictor in STANCE_READERS and "evidence_stance" not in stages:
                raise GraphBuildError(
                    f"veracity.predictor {cfg.veracity.predictor!r} reads the stances: add stage 'evidence_stance'"
                )
            if cfg.veracity.predictor == "stance_features":
                kind = self.artifact_provenance("veracity").get("kind")
                if kind != "stance_features_classifier":
                    raise GraphBuildError(
                        f"veracity.stance_features: {self.artifact_path('veracity')} is not a stance-features "
                        f"artifact (provenance kind {kind!r})"
                    )
            available = {"claim", "evidence"} | (JUSTIFICATION_INPUTS if "justify" in stages else set())
            self._check_trained("veracity", available)
            if cfg.veracity.predictor == "prompt":
                t = out["veracity"] = self._get("veracity.template", cfg.veracity.template)
                _expect(t, "veracity", "classify", available)
        return out

    # --- trained predictors (soft prompts, encoder classifiers) --------------------------------------

    def predictor_kind(self, stage: StageName) -> str:
        return str(getattr(getattr(self.config, stage), "predictor", "prompt"))

    def artifact_path(self, stage: StageName) -> Path:
        """The artifact folder of a stage's trained predictor: the configured one, else the shipped one
        (a multi-task check-worthiness head defaults to the stance stage's model, to load it once)."""
        kind = self.predictor_kind(stage)
        configured = getattr(getattr(self.config, stage), kind, None)
        if configured is None and (stage, kind) == ("check_worthiness", "multitask"):
            stance = self.config.evidence_stance
            configured = stance.encoder if stance.predictor == "encoder" else None
        if configured is not None:
            return Path(configured)
        shipped = SHIPPED_ARTIFACTS.get((stage, kind))
        if shipped is None:
            raise GraphBuildError(f"{stage}.{kind}: no artifact ships for this predictor; give its folder")
        return shipped_artifact(shipped)

    def soft_prompt_path(self) -> Path:
        return self.artifact_path("check_worthiness")

    def artifact_provenance(self, stage: StageName) -> dict[str, Any]:
        path = self.artifact_path(stage) / "provenance.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GraphBuildError(f"{stage}.{self.predictor_kind(stage)}: cannot read {path}: {exc}") from exc
        return data

    def _check_trained(self, stage: StageName, available: set[str]) -> tuple[str, ...]:
        """For an encoder predictor: its inputs must be available here; returns its labels."""
        if self.predictor_kind(stage) != "encoder":
            return ()
        provenance = self.artifact_provenance(stage)
        if provenance.get("kind") != "encoder_classifier":
            raise GraphBuildError(f"{stage}.encoder: {self.artifact_path(stage)} is not an encoder-classifier artifact")
        missing = set(provenance["inputs"]) - available
        if missing:
            raise GraphBuildError(
                f"{stage}.encoder: the classifier reads {sorted(missing)}, which this pipeline does not provide "
                f"(available: {sorted(available)}; justifications need the 'justify' stage)"
            )
        return tuple(provenance["labels"])

    def _check_multitask(self, stage: StageName, task: str) -> tuple[str, ...]:
        """The multi-task artifact of a stage must have ``task``'s head; returns its labels."""
        provenance = self.artifact_provenance(stage)
        where = f"{stage}.{self.predictor_kind(stage)}: {self.artifact_path(stage)}"
        if provenance.get("kind") != "multitask_encoder":
            raise GraphBuildError(f"{where} is not a multi-task encoder artifact (claimflow finetune multitask)")
        labels = provenance.get("labels", {}).get(task)
        if not labels:
            raise GraphBuildError(f"{where} has no {task} head (heads: {sorted(provenance.get('labels', {}))})")
        return tuple(labels)

    def stage_inputs(self, stage: StageName) -> tuple[str, ...]:
        """The state fields a classify stage's predictor reads."""
        if self.predictor_kind(stage) == "encoder":
            return tuple(self.artifact_provenance(stage)["inputs"])
        if self.predictor_kind(stage) in STANCE_READERS:
            return ("evidence_stances",)
        return self.templates[stage].inputs

    @cached_property
    def _stage_refs(self) -> dict[str, str]:
        refs = self.prompt_refs()
        for stage in ("check_worthiness", "evidence_stance", "veracity"):
            kind = self.predictor_kind(stage)
            if stage not in self.config.stages or kind == "prompt":
                continue
            if kind == "aggregate":
                refs[stage] = f"aggregate:{self.config.veracity.combine}"
                if self.config.veracity.nei_threshold is not None:
                    refs[stage] += f"@nei{self.config.veracity.nei_threshold:g}"
                continue
            folder = self.artifact_path(stage)
            weights = next((folder / f for f in WEIGHT_FILES if (folder / f).exists()), None)
            digest = "missing"
            if weights is not None:
                hashed = hashlib.sha256(weights.read_bytes())
                if (folder / HEADS_FILE).exists():  # a multi-task artifact: its heads are part of the model
                    hashed.update((folder / HEADS_FILE).read_bytes())
                digest = hashed.hexdigest()[:8]
            label = "softprompt" if kind == "soft_prompt" else kind
            prefix = f"{refs[stage]}+" if stage in refs else ""
            refs[stage] = f"{prefix}{label}:{folder.name}#{digest}"
        return refs

    def stage_ref(self, stage: StageName) -> str:
        """The template reference, or the trained predictor's name and weights hash (for a soft prompt
        both); hashed once per Components, not per verification."""
        return self._stage_refs[stage]

    def prompt_refs(self) -> dict[str, str]:
        return {key: t.ref for key, t in self.templates.items()}

    # --- lazily created ------------------------------------------------------------------------

    @cached_property
    def _factory(self) -> BackendFactory:
        if self._backend_factory is not None:
            return self._backend_factory
        from claimflow.llm.factory import make_backend

        return make_backend

    def backend(self, key: str) -> Backend:
        if key not in self._backends:
            self._backends[key] = self._factory(self.config.backends[key], self.store)
        return self._backends[key]

    def stage_backend(self, stage: StageName) -> Engine:
        """The engine whose counters a stage's instrumentation reads (a backend, or a soft prompt)."""
        if self.predictor_kind(stage) != "prompt":
            return self._trained_predictor(stage)
        return self.backend(getattr(self.config, stage).backend)

    def multitask(self, path: Path) -> MultitaskEncoder:
        """The multi-task model at ``path``, loaded once however many stages use it."""
        key = str(path.resolve())
        if key not in self._multitask:
            from claimflow.predictors.multitask import MultitaskEncoder

            self._multitask[key] = MultitaskEncoder(path, store=self.store)
        return self._multitask[key]

    def stance_model(self) -> MultitaskEncoder:
        """The evidence stage's multi-task model (``evidence_stance.predictor: encoder``)."""
        return self.multitask(self.artifact_path("evidence_stance"))

    def _trained_predictor(self, stage: StageName) -> TrainedPredictor:
        if stage not in self._trained:
            kind = self.predictor_kind(stage)
            path = self.artifact_path(stage) if kind != "aggregate" else Path()
            if stage == "evidence_stance":
                self._trained[stage] = self.stance_model().head("stance")
            elif kind == "stance_features":
                from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

                self._trained[stage] = StanceFeatureClassifier(
                    path,
                    support_label=self.config.evidence_stance.support_label,
                    refute_label=self.config.evidence_stance.refute_label,
                )
            elif kind == "aggregate":
                from claimflow.predictors.stance_aggregate import StanceAggregator

                cfg = self.config
                self._trained[stage] = StanceAggregator(
                    support_label=cfg.evidence_stance.support_label,
                    refute_label=cfg.evidence_stance.refute_label,
                    combine=cfg.veracity.combine,
                    nei_threshold=cfg.veracity.nei_threshold,
                )
            elif kind == "multitask":
                self._trained[stage] = self.multitask(path).head("claim")
            elif kind == "soft_prompt":
                from claimflow.predictors.soft_prompt import SoftPromptClassifier

                self._trained[stage] = SoftPromptClassifier(path, store=self.store, registry=self.registry)
            else:
                from claimflow.predictors.encoder import EncoderClassifier

                self._trained[stage] = EncoderClassifier(path, store=self.store)
        return self._trained[stage]

    def loaded_backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def classifier(self, stage: StageName) -> PromptClassifier | TrainedPredictor:
        if self.predictor_kind(stage) != "prompt":
            return self._trained_predictor(stage)
        if stage not in self._classifiers:
            cfg = getattr(self.config, stage)
            classifier = PromptClassifier(
                self.templates[stage],
                self.backend(cfg.backend),
                verbalizer=cfg.verbalizer,
                batch_size=cfg.batch_size,
                max_answer_tokens=cfg.max_answer_tokens,
                aggregation=cfg.aggregation,
                temperature=cfg.temperature,
                demos=self._demo_selector(stage),
                n_shots=cfg.demos.k if cfg.demos else 0,
                demo_style=cfg.demos.style if cfg.demos else "chat",
            )
            if cfg.calibration == "contextual":
                classifier.calibrate()
            self._classifiers[stage] = classifier
        return self._classifiers[stage]

    def _demo_selector(self, stage: StageName) -> DemoSelector | None:
        demos = getattr(self.config, stage).demos
        if demos is None:
            return None
        template = self.templates[stage]
        embedder = None
        if demos.selector in ("knn", "mmr") or demos.order == "similarity_ascending":
            from claimflow.prompts.embeddings import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(demos.embedding_model, store=self.store)
        return DemoSelector(
            load_pool(demos.pool, template),
            template.inputs,
            selector=demos.selector,
            order=demos.order,
            seed=demos.seed,
            mmr_lambda=demos.mmr_lambda,
            embedder=embedder,
        )

    def generator(self, side: str) -> PromptGenerator:
        if side not in self._generators:
            cfg = self.config.justify
            self._generators[side] = PromptGenerator(
                self.templates[f"justify_{side}"],
                self.backend(cfg.backend),
                max_tokens=cfg.max_tokens,
                temperature=cfg.temperature,
                repetition_penalty=cfg.repetition_penalty,
            )
        return self._generators[side]

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        for predictor in self._trained.values():
            predictor.close()
        for model in self._multitask.values():
            model.close()

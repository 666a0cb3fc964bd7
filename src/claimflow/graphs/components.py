"""What the nodes call, resolved and validated from the config at build time; models load lazily."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimflow.config import (
    BUILTIN_PREDICTOR_KINDS,
    PREDICTOR_STAGES,
    STAGE_ORDER,
    BackendConfig,
    PipelineConfig,
    PredictorStage,
    StageName,
)
from claimflow.errors import GraphBuildError, TemplateError
from claimflow.graphs.predictor_registry import Classifier, PredictorContext, Resolved, UncountedEngine
from claimflow.llm.base import Backend, Engine
from claimflow.models.store import ModelStore
from claimflow.predictors import PromptGenerator
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate

if TYPE_CHECKING:
    from claimflow.predictors.multitask import MultitaskEncoder

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
FIELD_SOURCES = {
    "evidence_stances": "evidence_stance",
    "stance_summary": "evidence_stance",
    "support_justification": "justify",
    "refute_justification": "justify",
}
"""Fields a later stage reads -> the stage that writes them."""


def field_sources(missing: set[str]) -> str:
    """``"; <field> comes from stage '<stage>'"`` for each missing field a stage writes (error suffix)."""
    return "".join(f"; {f} comes from stage {FIELD_SOURCES[f]!r}" for f in sorted(missing) if f in FIELD_SOURCES)


NEEDED_FOR = {"check_worthiness": "the gate", "evidence_stance": "the stances", "justify": "the justifications"}
ARTIFACT_NAMES: dict[str, tuple[str, str | None]] = {
    "encoder_classifier": ("an encoder-classifier", None),
    "multitask_encoder": ("a multi-task encoder", "claimflow finetune multitask"),
    "stance_features_classifier": ("a stance-features", None),
}
"""Artifact kinds (``provenance.json``'s ``kind``) -> how an error names them, and the command that
trains one (else the error names the kind found)."""


def expect_template(template: PromptTemplate, stage: str, kind: str, allowed: set[str]) -> None:
    """A template wired into ``stage``: no gold labels, the ``kind`` (classify / generate) expected, and
    every input it declares among the fields the pipeline provides (``allowed``)."""
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
    """Templates (resolved now), backends and predictors (created on first use).

    Each classify stage's predictor is the kind its config names, looked up in the predictor registry
    (:mod:`claimflow.graphs.predictor_registry`): the kind's build-time check runs here, its factory
    on the stage's first use."""

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
        self._contexts: dict[str, PredictorContext] = {}
        self._resolved: dict[str, Resolved] = {}
        self._predictors: dict[str, Classifier] = {}
        self._engines: dict[str, Engine] = {}
        self._generators: dict[str, PromptGenerator] = {}
        self._multitask: dict[str, MultitaskEncoder] = {}
        self.templates: dict[str, PromptTemplate] = {}
        self._resolve()

    def template(self, key: str, ref: str) -> PromptTemplate:
        """The template ``ref`` from the registry; a :class:`GraphBuildError` naming ``key`` otherwise."""
        try:
            return self.registry.get(ref)
        except TemplateError as exc:
            raise GraphBuildError(f"{key}: {exc}") from exc

    def _resolve(self) -> None:
        for stage in STAGE_ORDER:
            if stage not in self.config.stages:
                continue
            if stage == "justify":
                self._resolve_justify()
            else:
                self._resolve_predictor(stage)

    def _resolve_justify(self) -> None:
        if "evidence_stance" not in self.config.stages:
            raise GraphBuildError("stages: 'justify' needs 'evidence_stance' (it writes from the stances)")
        for side in ("support", "refute"):
            key = f"justify.{side}_template"
            t = self.templates[f"justify_{side}"] = self.template(key, getattr(self.config.justify, f"{side}_template"))
            expect_template(t, key, "generate", STAGE_INPUTS["justify"])

    def _resolve_predictor(self, stage: PredictorStage) -> None:
        """The build-time check of a stage's predictor kind: the stages it needs, its artifact's kind,
        the kind's own check, the fields it reads, and the stage's label settings against its labels."""
        ctx = self.predictor_context(stage)
        spec, kind = ctx.spec, ctx.kind
        for need in spec.needs:
            if need not in self.config.stages:
                raise GraphBuildError(f"{stage}.predictor {kind!r} reads {NEEDED_FOR[need]}: add stage {need!r}")
        if spec.artifact_kind is not None:
            found = ctx.provenance().get("kind")
            if found != spec.artifact_kind:
                what, trainer = ARTIFACT_NAMES.get(spec.artifact_kind, (f"a {spec.artifact_kind!r}", None))
                raise GraphBuildError(
                    f"{stage}.{kind}: {self.artifact_path(stage)} is not {what} artifact "
                    f"({trainer or f'provenance kind {found!r}'})"
                )
        resolved = (spec.check(ctx) if spec.check is not None else None) or Resolved(spec.inputs, spec.labels)
        available = self.available_inputs(stage)
        missing = set(resolved.inputs) - available
        if missing:
            raise GraphBuildError(
                f"{stage}.predictor {kind!r} reads {sorted(missing)}, which this pipeline does not provide "
                f"(available: {sorted(available)}){field_sources(missing)}"
            )
        if resolved.template is not None:
            self.templates[stage] = resolved.template
        self._resolved[stage] = resolved
        self._check_labels(stage, resolved)

    def _check_labels(self, stage: PredictorStage, resolved: Resolved) -> None:
        labels = resolved.labels
        if labels is None:
            return
        if stage == "check_worthiness":
            cfg = self.config.check_worthiness
            if cfg.positive_label not in labels:
                raise GraphBuildError(
                    f"check_worthiness.positive_label {cfg.positive_label!r} is not a label of "
                    f"the {cfg.predictor} predictor ({list(labels)})"
                )
        elif stage == "evidence_stance":
            where = resolved.source or f"the {self.config.evidence_stance.predictor} predictor"
            for key in ("support_label", "refute_label"):
                if getattr(self.config.evidence_stance, key) not in labels:
                    raise GraphBuildError(f"evidence_stance.{key} is not a label of {where} ({list(labels)})")

    def available_inputs(self, stage: PredictorStage) -> frozenset[str]:
        """The fields this pipeline provides a classify stage's predictor."""
        if stage != "veracity":
            return frozenset(STAGE_INPUTS[stage])
        available = {"claim", "evidence"}
        if "justify" in self.config.stages:
            available |= JUSTIFICATION_INPUTS
        if "evidence_stance" in self.config.stages:
            available |= {"evidence_stances", "stance_summary"}
        return frozenset(available)

    # --- predictors by kind ----------------------------------------------------------------------

    def predictor_kind(self, stage: StageName) -> str:
        return str(getattr(getattr(self.config, stage), "predictor", "prompt"))

    def predictor_context(self, stage: PredictorStage) -> PredictorContext:
        """What the stage's predictor kind is built and checked with."""
        if stage not in self._contexts:
            self._contexts[stage] = PredictorContext(self, stage)
        return self._contexts[stage]

    def _artifact(self, stage: PredictorStage) -> Path | None:
        ctx = self.predictor_context(stage)
        if ctx.kind in BUILTIN_PREDICTOR_KINDS[stage]:  # a built-in kind's folder is the setting named after it
            configured = getattr(ctx.settings, ctx.kind, None)
        else:
            configured = getattr(ctx.options, "artifact", None)
        if configured is None:
            default = ctx.spec.default_artifact
            configured = default(ctx) if callable(default) else default
        return None if configured is None else Path(configured)

    def artifact_path(self, stage: PredictorStage) -> Path:
        """The artifact folder of a stage's trained predictor: the configured one, else the kind's default
        (the shipped one; a multi-task check-worthiness head defaults to the stance stage's model, to load
        it once)."""
        path = self._artifact(stage)
        if path is None:
            kind = self.predictor_kind(stage)
            where = "" if kind in BUILTIN_PREDICTOR_KINDS[stage] else f" ({stage}.options.artifact)"
            raise GraphBuildError(f"{stage}.{kind}: no artifact ships for this predictor; give its folder{where}")
        return path

    def soft_prompt_path(self) -> Path:
        return self.artifact_path("check_worthiness")

    def artifact_provenance(self, stage: PredictorStage) -> dict[str, Any]:
        path = self.artifact_path(stage) / "provenance.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GraphBuildError(f"{stage}.{self.predictor_kind(stage)}: cannot read {path}: {exc}") from exc
        return data

    def artifact_ref(self, stage: PredictorStage, name: str) -> str:
        """``<name>:<folder>#<sha256[:8]>`` of the stage's artifact weights (a multi-task artifact's heads too)."""
        folder = self.artifact_path(stage)
        weights = next((folder / f for f in WEIGHT_FILES if (folder / f).exists()), None)
        digest = "missing"
        if weights is not None:
            hashed = hashlib.sha256(weights.read_bytes())
            if (folder / HEADS_FILE).exists():  # a multi-task artifact: its heads are part of the model
                hashed.update((folder / HEADS_FILE).read_bytes())
            digest = hashed.hexdigest()[:8]
        return f"{name}:{folder.name}#{digest}"

    def stage_inputs(self, stage: PredictorStage) -> tuple[str, ...]:
        """The state fields a classify stage's predictor reads."""
        return self._resolved[stage].inputs

    def _ref(self, stage: PredictorStage) -> str:
        ctx = self.predictor_context(stage)
        if ctx.spec.ref is not None:
            return ctx.spec.ref(ctx)
        parts = [ctx.template.ref] if ctx.template is not None else []
        if self._artifact(stage) is not None:
            parts.append(ctx.artifact_ref())
        return "+".join(parts) or ctx.kind

    @cached_property
    def _stage_refs(self) -> dict[str, str]:
        refs = self.prompt_refs()
        for stage in PREDICTOR_STAGES:
            if stage in self.config.stages:
                refs[stage] = self._ref(stage)
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
        """The engine whose counters a stage's instrumentation reads (a backend, or a predictor that runs
        its own model)."""
        if stage not in PREDICTOR_STAGES:
            return self.backend(getattr(self.config, stage).backend)
        ctx = self.predictor_context(stage)
        if ctx.spec.engine is not None:
            return ctx.spec.engine(ctx)
        predictor = self.classifier(stage)
        if isinstance(predictor, Engine):
            return predictor
        if stage not in self._engines:
            self._engines[stage] = UncountedEngine(ctx.kind, predictor)
        return self._engines[stage]

    def multitask(self, path: Path) -> MultitaskEncoder:
        """The multi-task model at ``path``, loaded once however many stages use it."""
        key = str(path.resolve())
        if key not in self._multitask:
            from claimflow.predictors.multitask import MultitaskEncoder
            from claimflow.predictors.trained import load_encoder

            encoders = self.config.encoders
            self._multitask[key] = load_encoder(
                MultitaskEncoder, path, store=self.store, runtime=encoders.runtime, quantize=encoders.quantize
            )
        return self._multitask[key]

    def stance_model(self) -> MultitaskEncoder:
        """The evidence stage's multi-task model (``evidence_stance.predictor: encoder``)."""
        return self.multitask(self.artifact_path("evidence_stance"))

    def loaded_backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def classifier(self, stage: PredictorStage) -> Classifier:
        """The stage's predictor, built by its kind's factory on first use."""
        if stage not in self._predictors:
            ctx = self.predictor_context(stage)
            self._predictors[stage] = ctx.spec.factory(ctx)
        return self._predictors[stage]

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
        for predictor in self._predictors.values():
            close = getattr(predictor, "close", None)
            if callable(close):
                close()
        for model in self._multitask.values():
            model.close()

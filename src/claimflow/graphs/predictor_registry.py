"""Predictor kinds: each ``(stage, kind)`` names a builder and the build-time check of what it reads.

A classify stage (``check_worthiness``, ``evidence_stance``, ``veracity``) runs the predictor its
``predictor`` setting names. The built-in kinds are registered by
:mod:`claimflow.graphs.builtin_predictors`; :func:`register_predictor` is the extension point for
your own::

    class KeywordVerdict:
        labels = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")

        def __init__(self, word: str) -> None:
            self.word = word

        def predict(self, inputs):
            return [LabelScores(label="REFUTED" if self.word in row["claim"] else "SUPPORTED") for row in inputs]

    class KeywordOptions(BaseModel, extra="forbid"):
        word: str = "never"

    register_predictor(
        "veracity", "keyword", lambda ctx: KeywordVerdict(ctx.options.word), inputs=("claim",), options=KeywordOptions
    )
    PipelineConfig.from_dict({"veracity": {"predictor": "keyword", "options": {"word": "always"}}})

The kind is then valid in any pipeline config (an unknown kind stays a config error listing the
stage's kinds), ``options`` validates as the kind's options class, and the graph checks at build
time that the pipeline provides the fields the predictor reads (``inputs``) and runs the stages it
``needs``, and that its artifact folder, if it has one, is of ``artifact_kind``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from claimflow.config import (
    BUILTIN_PREDICTOR_KINDS,
    PREDICTOR_STAGES,
    STAGE_ORDER,
    ClassifyStageConfig,
    PipelineConfig,
    PredictorStage,
    StageName,
    predictor_kinds,
    predictor_options_class,
    register_predictor_kind,
    unregister_predictor_kind,
)
from claimflow.errors import ConfigError, GraphBuildError
from claimflow.llm.base import Backend, BackendStats, Engine
from claimflow.models.store import ModelStore
from claimflow.prompts.template import PromptTemplate
from claimflow.types import LabelScores, ModelProvenance

if TYPE_CHECKING:
    from claimflow.graphs.components import Components


@runtime_checkable
class Classifier(Protocol):
    """What a classify stage calls: one label distribution per input row (a row maps the fields the
    predictor reads to their values). ``labels``, ``stats`` (a
    :class:`~claimflow.llm.base.BackendStats`), ``provenance()`` and ``close()`` are optional."""

    def predict(self, inputs: Sequence[Mapping[str, Any]]) -> list[LabelScores]: ...


@runtime_checkable
class StanceScorer(Protocol):
    """An ``evidence_stance`` predictor that also scores each sentence's relevance; the node then uses
    it (``max_evidence`` keeps the most relevant sentences; ``None``: no relevance score)."""

    def stance_and_relevance(
        self, claim: str, sentences: Sequence[str]
    ) -> tuple[list[LabelScores], list[float] | None]: ...


@dataclass(frozen=True)
class Resolved:
    """What a predictor's build-time check found: the fields it reads, its labels if known (the
    check-worthiness and stance stages check their label settings against them), the template it
    renders (recorded in the provenance) and how to name it in an error (``source``)."""

    inputs: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    template: PromptTemplate | None = None
    source: str | None = None


PredictorFactory = Callable[["PredictorContext"], Classifier]
"""Builds a stage's predictor when the stage first runs (models load then, not at build time)."""


@dataclass(frozen=True)
class PredictorSpec:
    """One registered predictor kind of one stage (see :func:`register_predictor`)."""

    stage: PredictorStage
    kind: str
    factory: PredictorFactory
    inputs: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    needs: tuple[StageName, ...] = ()
    artifact_kind: str | None = None
    default_artifact: Path | Callable[[PredictorContext], Path | None] | None = None
    options: type[BaseModel] | None = None
    check: Callable[[PredictorContext], Resolved | None] | None = None
    engine: Callable[[PredictorContext], Engine] | None = None
    ref: Callable[[PredictorContext], str] | None = None


class PredictorContext:
    """What a predictor's factory and checks get: one classify stage of one pipeline.

    ``settings`` is the stage's config, ``options`` its validated options (None for a kind that
    takes none), ``backend()`` the stage's backend (created on first use), ``artifact()`` the
    artifact folder (the configured one, ``options.artifact`` for a registered kind, else the
    kind's default), ``provenance()`` that folder's ``provenance.json``.
    """

    def __init__(self, components: Components, stage: PredictorStage) -> None:
        self.components = components
        self.stage: PredictorStage = stage

    @property
    def config(self) -> PipelineConfig:
        return self.components.config

    @property
    def settings(self) -> ClassifyStageConfig:
        settings: ClassifyStageConfig = getattr(self.config, self.stage)
        return settings

    @property
    def kind(self) -> str:
        return self.settings.predictor

    @property
    def spec(self) -> PredictorSpec:
        return predictor_spec(self.stage, self.kind)

    @cached_property
    def options(self) -> Any:
        options_cls = self.spec.options
        return None if options_cls is None else options_cls.model_validate(dict(self.settings.options or {}))

    @property
    def store(self) -> ModelStore:
        return self.components.store

    @property
    def available(self) -> frozenset[str]:
        """The fields this pipeline provides the stage."""
        return self.components.available_inputs(self.stage)

    @property
    def template(self) -> PromptTemplate | None:
        """The template the build-time check resolved for the stage, if any."""
        return self.components.templates.get(self.stage)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The fields the predictor reads (after the build-time check)."""
        return self.components.stage_inputs(self.stage)

    def backend(self, key: str | None = None) -> Backend:
        """A backend of the pipeline by key; default: the stage's ``backend`` setting."""
        return self.components.backend(key or self.settings.backend)

    def artifact(self) -> Path:
        return self.components.artifact_path(self.stage)

    def provenance(self) -> dict[str, Any]:
        return self.components.artifact_provenance(self.stage)

    def artifact_ref(self, name: str | None = None) -> str:
        """``<name>:<folder>#<weights sha256[:8]>`` (name: the kind), as result provenance records it."""
        return self.components.artifact_ref(self.stage, name or self.kind)


class UncountedEngine:
    """The engine of a stage whose predictor keeps no counters: none counted, the predictor's class
    as the provenance."""

    def __init__(self, kind: str, predictor: object) -> None:
        self.stats = BackendStats()
        self.kind = kind
        self.source = f"{type(predictor).__module__}.{type(predictor).__qualname__}"

    def provenance(self) -> ModelProvenance:
        return ModelProvenance(backend="predictor", model=self.kind, source=self.source)

    def close(self) -> None:
        """The predictor is closed with the stage's other components."""


_SPECS: dict[tuple[str, str], PredictorSpec] = {}

STAGE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "check_worthiness": ("claim",),
    "evidence_stance": ("claim", "sentence"),
    "veracity": ("claim", "evidence"),
}
"""The fields a registered predictor reads unless it says (``inputs``)."""


def register_predictor(
    stage: PredictorStage,
    kind: str,
    factory: PredictorFactory,
    *,
    inputs: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    needs: Sequence[StageName] = (),
    artifact_kind: str | None = None,
    default_artifact: str | Path | Callable[[PredictorContext], Path | None] | None = None,
    options: type[BaseModel] | None = None,
    check: Callable[[PredictorContext], Resolved | None] | None = None,
    engine: Callable[[PredictorContext], Engine] | None = None,
    ref: Callable[[PredictorContext], str] | None = None,
) -> PredictorSpec:
    """Make ``kind`` a predictor of ``stage``: ``<stage>: {predictor: <kind>}`` then builds it with
    ``factory(ctx)`` (a :class:`PredictorContext`) when the stage first runs; the result has
    ``predict(inputs) -> list[LabelScores]``, one per row.

    Build-time check (when the :class:`~claimflow.Verifier` is built, before any model loads):

    - ``inputs``: the fields each row holds (default: the stage's ``claim`` / ``claim, sentence`` /
      ``claim, evidence``); veracity may also read ``support_justification``,
      ``refute_justification`` (stage ``justify``), ``evidence_stances`` and ``stance_summary`` (stage
      ``evidence_stance``). A field the pipeline does not provide is an error naming it.
    - ``needs``: earlier stages that must run (e.g. ``("evidence_stance",)``).
    - ``artifact_kind``: the ``kind`` the artifact folder's ``provenance.json`` must have; the folder
      is ``options.artifact``, else ``default_artifact`` (a path, or ``ctx -> path``).
    - ``labels``: the predictor's labels (the check-worthiness and stance stages check their label
      settings against them); ``check(ctx)``: any further check, raising
      :class:`~claimflow.errors.GraphBuildError`, optionally returning a :class:`Resolved`.

    ``options``: the pydantic class ``<stage>.options`` validates as (best with
    ``extra="forbid"``); ``ctx.options`` is the validated instance. ``engine(ctx)``: the engine
    whose counters and provenance the stage reports (default: the predictor if it has ``stats``,
    ``provenance()`` and ``close()``, else none counted). ``ref(ctx)``: the stage's entry in
    ``result.provenance.prompts`` (default: the artifact's ``kind:folder#sha256``, else the kind).

    Registering the same spec again is a no-op; a registered kind takes another only after
    :func:`unregister_predictor`, and the built-in kinds never do. Returns the spec; raises
    :class:`~claimflow.errors.ConfigError` saying what is wrong.
    """
    if stage not in PREDICTOR_STAGES:
        raise ConfigError(f"predictor stage {stage!r}: a predictor serves one of {', '.join(PREDICTOR_STAGES)}")
    if not callable(factory):
        raise ConfigError(f"{stage} predictor {kind!r}: the factory must be callable as factory(ctx)")
    fields = tuple(STAGE_FIELDS[stage] if inputs is None else inputs)
    if isinstance(inputs, str) or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"{stage} predictor {kind!r}: inputs must be a sequence of field names, not {inputs!r}")
    earlier = STAGE_ORDER[: STAGE_ORDER.index(stage)]
    if isinstance(needs, str) or any(n not in earlier for n in needs):
        raise ConfigError(
            f"{stage} predictor {kind!r}: needs names earlier stages ({', '.join(earlier)}), not {needs!r}"
        )
    spec = PredictorSpec(
        stage=stage,
        kind=kind,
        factory=factory,
        inputs=fields,
        labels=None if labels is None else tuple(labels),
        needs=tuple(needs),
        artifact_kind=artifact_kind,
        default_artifact=Path(default_artifact) if isinstance(default_artifact, str) else default_artifact,
        options=options,
        check=check,
        engine=engine,
        ref=ref,
    )
    current = _SPECS.get((stage, kind))
    if current == spec:
        return current
    if current is not None:
        if kind in BUILTIN_PREDICTOR_KINDS[stage]:
            raise ConfigError(f"{stage} predictor {kind!r} is built in; register yours under another kind")
        raise ConfigError(
            f"{stage} predictor {kind!r} is already registered; unregister_predictor({stage!r}, {kind!r}) first"
        )
    register_predictor_kind(stage, kind, options)
    _SPECS[(stage, kind)] = spec
    return spec


def unregister_predictor(stage: PredictorStage, kind: str) -> None:
    """Forget a kind added by :func:`register_predictor` (built-in kinds stay); an unknown kind is ignored."""
    unregister_predictor_kind(stage, kind)
    _SPECS.pop((stage, kind), None)


def registered_predictors(stage: PredictorStage) -> tuple[str, ...]:
    """The predictor kinds of ``stage`` the graph can build, sorted."""
    return tuple(kind for kind in predictor_kinds(stage) if (stage, kind) in _SPECS)


def predictor_spec(stage: PredictorStage, kind: str) -> PredictorSpec:
    """The registered spec of a stage's kind; an unknown kind is a :class:`ConfigError` listing the stage's kinds."""
    predictor_options_class(stage, kind)  # raises for an unknown kind
    try:
        return _SPECS[(stage, kind)]
    except KeyError:
        raise GraphBuildError(
            f"{stage} predictor {kind!r} is a known name but has no builder: register it with "
            "claimflow.graphs.register_predictor(stage, kind, factory)"
        ) from None

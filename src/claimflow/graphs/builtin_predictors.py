"""The built-in predictor kinds: their builders and build-time checks, registered on import.

=================  ===================================  ==========================================
stage              kind                                 reads / needs / artifact
=================  ===================================  ==========================================
check_worthiness   prompt                               its template's inputs
check_worthiness   soft_prompt                          the template its artifact names (shipped)
check_worthiness   encoder                              an ``encoder_classifier`` (shipped)
check_worthiness   multitask                            the claim head of a ``multitask_encoder``
                                                        (the stance stage's model, else shipped)
evidence_stance    prompt                               its template's inputs
evidence_stance    encoder                              the stance (+ relevance) heads of a
                                                        ``multitask_encoder`` (shipped)
veracity           prompt                               its template's inputs
veracity           encoder                              an ``encoder_classifier`` (shipped)
veracity           lora                                 a ``composed_lora`` (``finetune compose``;
                                                        ``veracity.lora``): claim + evidence
veracity           aggregate                            the stances (needs ``evidence_stance``)
veracity           stance_features                      the stances; a ``stance_features_classifier``
                                                        (shipped)
=================  ===================================  ==========================================

The shipped artifacts are :data:`~claimflow.graphs.components.SHIPPED_ARTIFACTS`; models load when a
stage first runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimflow.config import PREDICTOR_STAGES, PredictorStage
from claimflow.errors import GraphBuildError
from claimflow.graphs.components import SHIPPED_ARTIFACTS, expect_template, field_sources, shipped_artifact
from claimflow.graphs.predictor_registry import Classifier, PredictorContext, Resolved, register_predictor
from claimflow.llm.base import BackendStats, Engine
from claimflow.predictors import PromptClassifier
from claimflow.prompts.demos import DemoSelector, load_pool
from claimflow.prompts.template import PromptTemplate
from claimflow.types import LabelScores, ModelProvenance

if TYPE_CHECKING:
    from claimflow.predictors.multitask import MultitaskEncoder, TaskHead


STANCES = ("evidence_stances",)
"""What the stance readers (``aggregate``, ``stance_features``) read."""


def shipped(ctx: PredictorContext) -> Path | None:
    """The artifact shipped in the package for the stage's kind, if one is."""
    name = SHIPPED_ARTIFACTS.get((ctx.stage, ctx.kind))
    return None if name is None else shipped_artifact(name)


# --- prompted -------------------------------------------------------------------------------------


def text_fields(ctx: PredictorContext) -> set[str]:
    """The fields a template or an encoder may read: the stage's text (the stances are not text)."""
    return set(ctx.available) - set(STANCES)


def _template(ctx: PredictorContext, ref: str) -> PromptTemplate:
    template = ctx.components.template(f"{ctx.stage}.template", ref)
    expect_template(template, ctx.stage, "classify", text_fields(ctx))
    return template


def _check_prompt(ctx: PredictorContext) -> Resolved:
    t = _template(ctx, ctx.settings.template)
    return Resolved(inputs=t.inputs, labels=t.labels, template=t, source=t.ref)


def _demo_selector(ctx: PredictorContext, template: PromptTemplate) -> DemoSelector | None:
    demos = ctx.settings.demos
    if demos is None:
        return None
    embedder = None
    if demos.selector in ("knn", "mmr") or demos.order == "similarity_ascending":
        from claimflow.prompts.embeddings import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(demos.embedding_model, store=ctx.store)
    return DemoSelector(
        load_pool(demos.pool, template),
        template.inputs,
        selector=demos.selector,
        order=demos.order,
        seed=demos.seed,
        mmr_lambda=demos.mmr_lambda,
        embedder=embedder,
    )


def _prompt(ctx: PredictorContext) -> PromptClassifier:
    cfg, template = ctx.settings, ctx.template
    assert template is not None  # resolved by _check_prompt at build time
    classifier = PromptClassifier(
        template,
        ctx.backend(),
        verbalizer=cfg.verbalizer,
        batch_size=cfg.batch_size,
        max_answer_tokens=cfg.max_answer_tokens,
        aggregation=cfg.aggregation,
        temperature=cfg.temperature,
        demos=_demo_selector(ctx, template),
        n_shots=cfg.demos.k if cfg.demos else 0,
        demo_style=cfg.demos.style if cfg.demos else "chat",
    )
    if cfg.calibration == "contextual":
        classifier.calibrate()
    return classifier


def _backend(ctx: PredictorContext) -> Engine:
    return ctx.backend()


# --- soft prompt ----------------------------------------------------------------------------------


def _check_soft_prompt(ctx: PredictorContext) -> Resolved:
    t = _template(ctx, ctx.provenance()["template"])
    return Resolved(inputs=t.inputs, labels=t.labels, template=t, source=t.ref)


def _soft_prompt(ctx: PredictorContext) -> Classifier:
    from claimflow.predictors.soft_prompt import SoftPromptClassifier

    return SoftPromptClassifier(ctx.artifact(), store=ctx.store, registry=ctx.components.registry)


def _soft_prompt_ref(ctx: PredictorContext) -> str:
    assert ctx.template is not None  # resolved by _check_soft_prompt at build time
    return f"{ctx.template.ref}+{ctx.artifact_ref('softprompt')}"


# --- encoder classifier ---------------------------------------------------------------------------


def _check_encoder(ctx: PredictorContext) -> Resolved:
    provenance, available = ctx.provenance(), text_fields(ctx)
    missing = set(provenance["inputs"]) - available
    if missing:
        raise GraphBuildError(
            f"{ctx.stage}.{ctx.kind}: the classifier reads {sorted(missing)}, which this pipeline does not provide "
            f"(available: {sorted(available)}){field_sources(missing)}"
        )
    return Resolved(inputs=tuple(provenance["inputs"]), labels=tuple(provenance["labels"]))


def _encoder(ctx: PredictorContext) -> Classifier:
    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.trained import load_encoder

    encoders = ctx.config.encoders
    return load_encoder(
        EncoderClassifier, ctx.artifact(), store=ctx.store, runtime=encoders.runtime, quantize=encoders.quantize
    )


# --- composed LoRAs on a causal LM (LoraHub / LoraConcat / LoraMap) ------------------------------


def _lora(ctx: PredictorContext) -> Classifier:
    from claimflow.predictors.composed_lora import ComposedLoraClassifier

    return ComposedLoraClassifier(ctx.artifact(), store=ctx.store, registry=ctx.components.registry)


# --- the multi-task evidence model ----------------------------------------------------------------


def _head_labels(ctx: PredictorContext, task: str) -> tuple[str, ...]:
    provenance = ctx.provenance()
    labels = provenance.get("labels", {}).get(task)
    if not labels:
        raise GraphBuildError(
            f"{ctx.stage}.{ctx.kind}: {ctx.artifact()} has no {task} head "
            f"(heads: {sorted(provenance.get('labels', {}))})"
        )
    return tuple(labels)


def _check_claim_head(ctx: PredictorContext) -> Resolved:
    return Resolved(inputs=("claim",), labels=_head_labels(ctx, "claim"))


def _stance_model_else_shipped(ctx: PredictorContext) -> Path | None:
    """A multi-task check-worthiness head defaults to the stance stage's model, to load it once."""
    stance = ctx.config.evidence_stance
    configured = stance.encoder if stance.predictor == "encoder" else None
    return configured if configured is not None else shipped(ctx)


def _claim_head(ctx: PredictorContext) -> TaskHead:
    return ctx.components.multitask(ctx.artifact()).head("claim")


def _check_stance_head(ctx: PredictorContext) -> Resolved:
    return Resolved(inputs=("claim", "sentence"), labels=_head_labels(ctx, "stance"), source="the stance head")


class StanceAndRelevance:
    """The multi-task model's stance head as a classify-stage predictor that also gives each
    sentence's P(relevant), from the same encoder pass."""

    inputs = ("claim", "sentence")

    def __init__(self, model: MultitaskEncoder) -> None:
        self.model = model
        self.head = model.head("stance")
        self.labels = self.head.labels
        self.stats: BackendStats = model.stats  # shared: one model's passes, whichever head asks

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        return self.head.predict(inputs, ids)

    def stance_and_relevance(
        self, claim: str, sentences: Sequence[str]
    ) -> tuple[list[LabelScores], list[float] | None]:
        return self.model.stance_and_relevance(claim, sentences)

    def prefetch(self, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Score (claim, sentence) inputs ahead under the stance and relevance heads (cross-claim batching)."""
        self.head.prefetch(inputs)

    def clear_prefetched(self) -> None:
        self.head.clear_prefetched()

    def close(self) -> None:
        self.model.close()

    def provenance(self) -> ModelProvenance:
        return self.model.provenance()


def _stance_head(ctx: PredictorContext) -> StanceAndRelevance:
    return StanceAndRelevance(ctx.components.stance_model())


# --- veracity from the stances --------------------------------------------------------------------


def _aggregate(ctx: PredictorContext) -> Classifier:
    from claimflow.predictors.stance_aggregate import StanceAggregator

    cfg = ctx.config
    return StanceAggregator(
        support_label=cfg.evidence_stance.support_label,
        refute_label=cfg.evidence_stance.refute_label,
        combine=cfg.veracity.combine,
        nei_threshold=cfg.veracity.nei_threshold,
    )


def _aggregate_ref(ctx: PredictorContext) -> str:
    veracity = ctx.config.veracity
    ref = f"aggregate:{veracity.combine}"
    return ref if veracity.nei_threshold is None else f"{ref}@nei{veracity.nei_threshold:g}"


def _stance_features(ctx: PredictorContext) -> Classifier:
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    return StanceFeatureClassifier(
        ctx.artifact(),
        support_label=ctx.config.evidence_stance.support_label,
        refute_label=ctx.config.evidence_stance.refute_label,
        min_relevance=ctx.config.veracity.min_relevance,
    )


ENCODER_STAGES: tuple[PredictorStage, ...] = ("check_worthiness", "veracity")

for _stage in PREDICTOR_STAGES:
    register_predictor(_stage, "prompt", _prompt, check=_check_prompt, engine=_backend)
register_predictor(
    "check_worthiness",
    "soft_prompt",
    _soft_prompt,
    check=_check_soft_prompt,
    default_artifact=shipped,
    ref=_soft_prompt_ref,
)
for _stage in ENCODER_STAGES:
    register_predictor(
        _stage, "encoder", _encoder, check=_check_encoder, artifact_kind="encoder_classifier", default_artifact=shipped
    )
register_predictor(
    "check_worthiness",
    "multitask",
    _claim_head,
    check=_check_claim_head,
    artifact_kind="multitask_encoder",
    default_artifact=_stance_model_else_shipped,
)
register_predictor(
    "evidence_stance",
    "encoder",
    _stance_head,
    check=_check_stance_head,
    artifact_kind="multitask_encoder",
    default_artifact=shipped,
)
register_predictor("veracity", "lora", _lora, check=_check_encoder, artifact_kind="composed_lora")
register_predictor("veracity", "aggregate", _aggregate, inputs=STANCES, needs=("evidence_stance",), ref=_aggregate_ref)
register_predictor(
    "veracity",
    "stance_features",
    _stance_features,
    inputs=STANCES,
    needs=("evidence_stance",),
    artifact_kind="stance_features_classifier",
    default_artifact=shipped,
)

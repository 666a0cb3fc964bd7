"""Typed pipeline configuration with a YAML round-trip. Unknown keys are errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Self, TypeVar, cast

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from claimflow.errors import ConfigError
from claimflow.io import load_yaml
from claimflow.types import StrictModel

log = logging.getLogger(__name__)

StageName = Literal["check_worthiness", "evidence_stance", "justify", "veracity"]
STAGE_ORDER: tuple[StageName, ...] = ("check_worthiness", "evidence_stance", "justify", "veracity")
VerbalizerKind = Literal["logit", "text", "structured", "es_rule"]
GatePolicy = Literal["annotate", "stop"]
"""``check_worthiness.gate``: run on past a claim judged not check-worthy (reporting the judgement), or stop."""


_Strict = StrictModel  # the base of the config classes below: unknown keys refused, frozen


DEFAULT_BACKEND_KIND = "llamacpp"
"""The kind of a backend whose config names none."""


class BackendConfig(_Strict):
    """One inference engine and the model it runs: the settings every kind shares.

    Each ``kind`` has its own config class (:class:`LlamaCppBackendConfig`, ...) that adds the
    settings only that engine reads, so a key set on the wrong kind is an error naming it.
    ``BackendConfig(kind=..., ...)`` and validation (``backends:`` in a pipeline config) build the
    class registered for ``kind`` (default ``llamacpp``); ``claimflow.llm.register_backend`` adds a kind.

    ``model`` is a model-store name (``claimflow models list``), a local path (a ``.gguf`` file for
    llama.cpp, a folder for transformers), a Hugging Face id (used only when online), or, for the
    ``openai`` kind, the model name the server expects.
    """

    # a field typed with this class holds (and dumps) the subclass of the backend's kind
    model_config = ConfigDict(polymorphic_serialization=True)

    kind: str = DEFAULT_BACKEND_KIND
    model: str = "smollm2-135m-instruct"
    context_length: int = Field(2048, ge=128)
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads; default: torch's (all cores) for transformers, llama-cpp-python's for llamacpp "
        "(half the cores for generation, all for prompt evaluation); 1 on a machine other jobs share",
    )
    seed: int = 0

    def __new__(cls, *args: Any, **data: Any) -> Self:
        kind_cls = backend_config_class(data.get("kind", DEFAULT_BACKEND_KIND)) if cls is BackendConfig else cls
        return super().__new__(cast("type[Self]", kind_cls))

    @model_validator(mode="wrap")
    @classmethod
    def _by_kind(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if cls is BackendConfig:  # a field or model_validate on the base: the kind's class validates
            if isinstance(data, BackendConfig) or not isinstance(data, Mapping):
                return handler(data)
            kind = data.get("kind", DEFAULT_BACKEND_KIND)
            if not isinstance(kind, str) or kind not in _BACKEND_CONFIGS:
                raise _unknown_kind_error(kind)
            return cast("Self", _BACKEND_CONFIGS[kind].model_validate(data))
        try:
            return handler(_without_legacy_keys(cls, data))
        except ValidationError as exc:
            raise _naming_the_kind(exc, cls) from None


class LlamaCppBackendConfig(BackendConfig):
    """A GGUF model in-process through llama-cpp-python (CPU)."""

    kind: Literal["llamacpp"] = "llamacpp"


class TransformersBackendConfig(BackendConfig):
    """A Hugging Face causal LM in-process (a GGUF model of the store is converted once)."""

    kind: Literal["transformers"] = "transformers"
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


class OpenAIBackendConfig(BackendConfig):
    """An OpenAI-compatible server (OpenAI, a vLLM server, llama.cpp's server); ``model`` is its model name."""

    kind: Literal["openai"] = "openai"
    base_url: str | None = None
    api: Literal["chat", "completions"] = "chat"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0)
    top_logprobs: int = Field(20, ge=1, le=20)
    max_concurrency: int = Field(
        4, ge=1, description="requests of one batch in flight at once (1: one after another); results keep their order"
    )


class VLLMBackendConfig(BackendConfig):
    """vLLM in-process (optional, needs a GPU)."""

    kind: Literal["vllm"] = "vllm"


class FakeBackendConfig(BackendConfig):
    """The scripted fake backend (tests, dry runs); loads nothing."""

    kind: Literal["fake"] = "fake"


_BUILTIN_BACKEND_CONFIGS: dict[str, type[BackendConfig]] = {
    c.model_fields["kind"].default: c
    for c in (
        LlamaCppBackendConfig,
        TransformersBackendConfig,
        OpenAIBackendConfig,
        VLLMBackendConfig,
        FakeBackendConfig,
    )
}
_BACKEND_CONFIGS: dict[str, type[BackendConfig]] = dict(_BUILTIN_BACKEND_CONFIGS)
BUILTIN_BACKEND_KINDS: tuple[str, ...] = tuple(sorted(_BUILTIN_BACKEND_CONFIGS))


_KNOWN_KINDS = "known kinds: {known} (claimflow.llm.register_backend adds one)"


def backend_kinds() -> tuple[str, ...]:
    """The backend kinds a config may name, built-in and registered, sorted."""
    return tuple(sorted(_BACKEND_CONFIGS))


def backend_config_class(kind: str) -> type[BackendConfig]:
    """The config class of a backend kind; :class:`ConfigError` listing the known kinds otherwise."""
    try:
        return _BACKEND_CONFIGS[kind]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown backend kind {kind!r}; {_KNOWN_KINDS.format(known=', '.join(backend_kinds()))}"
        ) from None


def register_backend_config(kind: str, config_cls: type[BackendConfig]) -> None:
    """The config half of ``claimflow.llm.register_backend`` (call that one: it adds the factory too).

    ``config_cls`` subclasses :class:`BackendConfig`, its ``kind`` defaulting to ``kind`` (best typed
    ``Literal["<kind>"]``). Registering the same class again is a no-op; a registered kind takes
    another class only after :func:`unregister_backend_config`, and built-in kinds never do.
    """
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z][\w.-]*", kind):
        raise ConfigError(f"backend kind {kind!r}: use letters, digits, '_', '-', '.', starting with a letter")
    if not (isinstance(config_cls, type) and issubclass(config_cls, BackendConfig)) or config_cls is BackendConfig:
        raise ConfigError(f"backend kind {kind!r}: the config class must subclass claimflow.config.BackendConfig")
    default = config_cls.model_fields["kind"].default
    if default != kind:
        raise ConfigError(
            f"backend kind {kind!r}: {config_cls.__name__}.kind must default to {kind!r} "
            f"(kind: Literal[{kind!r}] = {kind!r}), not {default!r}"
        )
    current = _BACKEND_CONFIGS.get(kind)
    if current is config_cls:
        return
    if kind in _BUILTIN_BACKEND_CONFIGS:
        raise ConfigError(f"backend kind {kind!r} is built in; register yours under another kind")
    if current is not None:
        raise ConfigError(f"backend kind {kind!r} is already registered ({current.__name__}); unregister it first")
    _BACKEND_CONFIGS[kind] = config_cls


def unregister_backend_config(kind: str) -> None:
    """Forget a registered backend kind (built-in kinds stay); an unknown kind is ignored."""
    if kind in _BUILTIN_BACKEND_CONFIGS:
        raise ConfigError(f"backend kind {kind!r} is built in and cannot be removed")
    _BACKEND_CONFIGS.pop(kind, None)


def _unknown_kind_error(kind: object) -> ValidationError:
    message = PydanticCustomError(
        "backend_kind",
        "unknown backend kind '{kind}'; " + _KNOWN_KINDS,
        {"kind": kind, "known": ", ".join(backend_kinds())},
    )
    return ValidationError.from_exception_data("BackendConfig", [{"type": message, "loc": ("kind",), "input": kind}])


def _naming_the_kind(exc: ValidationError, cls: type[BackendConfig]) -> ValidationError:
    """``exc`` with each unknown key's error naming the backend kind and the kinds that take the key."""
    kind = cls.model_fields["kind"].default
    errors: list[InitErrorDetails] = []
    for error in exc.errors():
        if error["type"] != "extra_forbidden" or len(error["loc"]) != 1:
            errors.append(cast("InitErrorDetails", error))
            continue
        key = str(error["loc"][0])
        owners = [k for k, c in sorted(_BACKEND_CONFIGS.items()) if key in c.model_fields]
        message = PydanticCustomError(
            "backend_setting",
            "not a setting of the {kind} backend{owners}; its settings: {settings}",
            {
                "kind": kind,
                "owners": f" (a setting of: {', '.join(owners)})" if owners else "",
                "settings": ", ".join(cls.model_fields),
            },
        )
        errors.append({"type": message, "loc": error["loc"], "input": error["input"]})
    return ValidationError.from_exception_data(exc.title, errors)


_LEGACY_FLAT_DEFAULTS: dict[str, object] = {
    "base_url": None,
    "api": "chat",
    "api_key_env": "OPENAI_API_KEY",
    "timeout_s": 60.0,
    "max_retries": 2,
    "top_logprobs": 20,
    "device": "cpu",
    "dtype": "float32",
}
_LEGACY_FLAT_KEYS = frozenset(BackendConfig.model_fields) | frozenset(_LEGACY_FLAT_DEFAULTS)


def _without_legacy_keys(cls: type[BackendConfig], data: Any) -> Any:
    """A backend dumped by claimflow before kinds had their own configs listed every kind's settings
    (run stores, A/B specs, ``claimflow config`` output): such a dump, recognised by having exactly
    that full key set, loads without the other kinds' keys, which its engine never read."""
    if not isinstance(data, Mapping) or set(data) != _LEGACY_FLAT_KEYS:
        return data
    foreign = {k: v for k, v in data.items() if k not in cls.model_fields}
    ignored = {k: v for k, v in foreign.items() if v != _LEGACY_FLAT_DEFAULTS.get(k)}
    if ignored:
        log.warning("backend %s: dropping settings its engine never read: %s", data.get("kind"), ignored)
    return {k: v for k, v in data.items() if k not in foreign}


PredictorStage = Literal["check_worthiness", "evidence_stance", "veracity"]
PREDICTOR_STAGES: tuple[PredictorStage, ...] = ("check_worthiness", "evidence_stance", "veracity")
"""The classify stages, whose ``predictor`` names a kind."""

BUILTIN_PREDICTOR_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "check_worthiness": ("encoder", "multitask", "prompt", "soft_prompt"),
        "evidence_stance": ("encoder", "prompt"),
        "veracity": ("aggregate", "encoder", "lora", "prompt", "stance_features"),
    }
)
"""stage -> the predictor kinds claimflow ships (built by :mod:`claimflow.graphs.builtin_predictors`)."""

_PREDICTOR_KINDS: dict[str, dict[str, type[BaseModel] | None]] = {
    stage: dict.fromkeys(kinds) for stage, kinds in BUILTIN_PREDICTOR_KINDS.items()
}
"""stage -> kind -> the class of its ``options`` (None: it takes none). The names a config may give;
the builders live in :mod:`claimflow.graphs.predictor_registry`, which fills this."""

_PREDICTOR_HINT = "claimflow.graphs.register_predictor adds one"


def _predictor_stage(stage: object) -> str:
    if not isinstance(stage, str) or stage not in _PREDICTOR_KINDS:
        raise ConfigError(f"predictor stage {stage!r}: a predictor serves one of {', '.join(PREDICTOR_STAGES)}")
    return stage


def predictor_kinds(stage: str) -> tuple[str, ...]:
    """The predictor kinds ``<stage>.predictor`` may name, built-in and registered, sorted."""
    return tuple(sorted(_PREDICTOR_KINDS[_predictor_stage(stage)]))


def predictor_options_class(stage: str, kind: str) -> type[BaseModel] | None:
    """The ``options`` class of a predictor kind (None: it takes none); :class:`ConfigError` listing
    the stage's kinds for an unknown one."""
    kinds = _PREDICTOR_KINDS[_predictor_stage(stage)]
    if kind not in kinds:
        raise ConfigError(
            f"unknown {stage} predictor {kind!r}; known kinds: {', '.join(predictor_kinds(stage))} ({_PREDICTOR_HINT})"
        )
    return kinds[kind]


def register_predictor_kind(stage: str, kind: str, options: type[BaseModel] | None = None) -> None:
    """The config half of ``claimflow.graphs.register_predictor`` (call that one: it adds the builder).

    ``options`` is the pydantic class ``<stage>.options`` validates as when ``predictor`` is ``kind``
    (None: the kind takes no options). Registering the same pair again is a no-op; a registered kind
    takes other options only after :func:`unregister_predictor_kind`, and built-in kinds never do.
    """
    kinds = _PREDICTOR_KINDS[_predictor_stage(stage)]
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z][\w.-]*", kind):
        raise ConfigError(f"{stage} predictor {kind!r}: use letters, digits, '_', '-', '.', starting with a letter")
    if options is not None and not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise ConfigError(f"{stage} predictor {kind!r}: options must be a pydantic model class (or None)")
    if kind in kinds and kinds[kind] is options:
        return
    if kind in BUILTIN_PREDICTOR_KINDS[stage]:
        raise ConfigError(f"{stage} predictor {kind!r} is built in; register yours under another kind")
    if kind in kinds:
        raise ConfigError(f"{stage} predictor {kind!r} is already registered; unregister it first")
    kinds[kind] = options


def unregister_predictor_kind(stage: str, kind: str) -> None:
    """Forget a registered predictor kind (built-in kinds stay); an unknown kind is ignored."""
    if kind in BUILTIN_PREDICTOR_KINDS[_predictor_stage(stage)]:
        raise ConfigError(f"{stage} predictor {kind!r} is built in and cannot be removed")
    _PREDICTOR_KINDS[stage].pop(kind, None)


def _registered_predictor(stage: str, kind: str) -> str:
    if kind not in _PREDICTOR_KINDS[stage]:
        raise PydanticCustomError(
            "predictor_kind",
            "unknown {stage} predictor '{kind}'; known kinds: {known} (" + _PREDICTOR_HINT + ")",
            {"stage": stage, "kind": kind, "known": ", ".join(predictor_kinds(stage))},
        )
    return kind


def _options_fit_the_kind(stage: str, kind: str, options: Mapping[str, Any] | None) -> None:
    options_cls = _PREDICTOR_KINDS[stage][kind]
    if options_cls is None:
        if options is not None:
            raise ValueError(
                f"{stage}.options is only used by predictor kinds that declare options, but {stage}.predictor "
                f"is {kind!r}, which takes none"
            )
        return
    try:
        options_cls.model_validate(dict(options or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join([f'{stage}.options', *(str(p) for p in err['loc'])])}: {err['msg']}" for err in exc.errors()
        )
        settings = ", ".join(options_cls.model_fields) or "none"
        raise ValueError(f"{problems} (the {kind} predictor's options: {settings})") from None


class DemoConfig(_Strict):
    """n-shot demonstrations from a labelled JSONL pool (``{"id", "label", <template inputs>}``)."""

    pool: Path
    k: int = Field(3, ge=0)
    selector: Literal["random", "balanced", "knn", "mmr"] = "random"
    order: Literal["as_sampled", "similarity_ascending", "label_interleaved"] = "as_sampled"
    style: Literal["chat", "inline"] = "chat"
    seed: int = 0
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0)
    embedding_model: str = "minilm-l6"


class ClassifyStageConfig(_Strict):
    """A classify stage: ``predictor`` names a kind registered for the stage (:func:`predictor_kinds`);
    ``options`` holds the settings of a kind registered with an options class."""

    STAGE: ClassVar[PredictorStage]
    predictor: str
    options: dict[str, Any] | None = Field(
        None,
        description="settings of a registered predictor kind that declares options (claimflow.graphs."
        "register_predictor(..., options=...)); validated by its options class",
        exclude_if=lambda options: options is None,
    )
    backend: str = "default"
    template: str
    verbalizer: VerbalizerKind = "logit"
    batch_size: int = Field(16, ge=1, description="prompts handed to the backend at once")
    max_answer_tokens: int = Field(8, ge=1, description="tokens generated when verbalizing text")
    aggregation: Literal["logsumexp", "max", "mean"] = "logsumexp"
    temperature: float = Field(1.0, gt=0, description="softmax temperature over label scores")
    calibration: Literal["none", "contextual"] = "none"
    demos: DemoConfig | None = None

    @field_validator("predictor")
    @classmethod
    def _registered_kind(cls, kind: str) -> str:
        return _registered_predictor(cls.STAGE, kind)

    @model_validator(mode="after")
    def _options_used(self) -> Self:
        _options_fit_the_kind(self.STAGE, self.predictor, self.options)
        return self


class CheckWorthinessConfig(ClassifyStageConfig):
    STAGE: ClassVar[PredictorStage] = "check_worthiness"
    predictor: str = Field(
        "encoder",
        description="encoder: the shipped MiniLM classifier; multitask: the claim head of the multi-task evidence "
        "model (loaded once with the stance stage); prompt: the template on a backend; soft_prompt; or a "
        "registered kind",
    )
    soft_prompt: Path | None = Field(None, description="soft-prompt artifact folder; default: the shipped one")
    encoder: Path | None = Field(None, description="encoder-classifier artifact folder; default: the shipped one")
    multitask: Path | None = Field(
        None, description="multi-task artifact folder; default: the stance stage's, else the shipped one"
    )
    template: str = "checkworthiness_short@1"
    positive_label: str = "Yes"
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="P(positive) at or above which a claim passes; default: the predicted label"
    )
    gate: GatePolicy = Field(
        "annotate",
        description="what a claim judged not check-worthy does when it has evidence and later stages are "
        "configured: annotate (default) runs every stage and reports the check-worthiness next to the "
        "verdict; stop ends the run there (status not_check_worthy), for triage over many sentences. "
        "A claim with nothing to verify it with stops either way; force runs on either way",
    )

    @model_validator(mode="after")
    def _template_used(self) -> CheckWorthinessConfig:
        _template_only_when_prompted(self, "check_worthiness", "checkworthiness_short@1")
        return self


def _template_only_when_prompted(stage: ClassifyStageConfig, name: str, default: str) -> None:
    predictor = getattr(stage, "predictor", "prompt")
    if predictor != "prompt" and stage.template != default:
        raise ValueError(
            f"template {stage.template!r} is only used by predictor: prompt, but {name}.predictor is "
            f"{predictor!r}; set predictor: prompt to use the template, or drop the template setting"
        )
    prompt_only = {"demos": stage.demos is not None, "calibration": stage.calibration != "none"}
    for key, set_here in prompt_only.items():
        if predictor != "prompt" and set_here:
            raise ValueError(f"{name}.{key} is only used by predictor: prompt, but {name}.predictor is {predictor!r}")


class EvidenceStanceConfig(ClassifyStageConfig):
    STAGE: ClassVar[PredictorStage] = "evidence_stance"
    predictor: str = Field(
        "encoder",
        description="encoder: the shipped multi-task evidence model (stance + relevance heads); prompt: the "
        "template; or a registered kind",
    )
    encoder: Path | None = Field(None, description="multi-task artifact folder; default: the shipped one")
    template: str = Field("evidence_stance_3way@1", description="used by predictor: prompt")
    support_label: str = "SUPPORT"
    refute_label: str = "REFUTE"
    max_evidence: int | None = Field(
        None,
        ge=1,
        description="keep the K most relevant sentences for the stages after this one (every sentence keeps its "
        "stance and relevance in the result); default: all",
    )

    @model_validator(mode="after")
    def _template_used(self) -> EvidenceStanceConfig:
        _template_only_when_prompted(self, "evidence_stance", "evidence_stance_3way@1")
        return self


class JustifyConfig(_Strict):
    backend: str = "default"
    support_template: str = "justification_support@1"
    refute_template: str = "justification_refute@1"
    max_tokens: int = Field(200, ge=1, description="about 150 words")
    temperature: float = Field(0.0, ge=0.0)
    repetition_penalty: float = Field(1.15, ge=1.0, description="curbs the loops small models fall into")
    max_sentences_per_side: int = Field(8, ge=1, description="most probable sentences of a side given")


DEFAULT_MIN_RELEVANCE = 0.1  # off-topic evidence scores 0.03-0.06; 0.5 made 37% of COVID-Fact dev NEI (docs)


class VeracityConfig(ClassifyStageConfig):
    STAGE: ClassVar[PredictorStage] = "veracity"
    predictor: str = Field(
        "stance_features",
        description="stance_features (default): the shipped logistic regression over the claim's stance "
        "summary; aggregate: the evidence stances combined, no model (both SUPPORTED / REFUTED / "
        "NOT_ENOUGH_INFO); encoder: the classifier over claim + justifications; lora: composed reasoning LoRAs "
        "on a causal LM over claim + evidence (veracity.lora); prompt: the template; or a registered kind",
    )
    encoder: Path | None = Field(None, description="encoder-classifier artifact folder; default: the shipped one")
    stance_features: Path | None = Field(
        None, description="stance-features classifier artifact folder; default: the shipped one"
    )
    lora: Path | None = Field(
        None, description="predictor: lora: a composed-LoRA artifact folder (claimflow finetune compose); none ships"
    )
    combine: Literal["max", "noisy_or"] = Field(
        "max", description="predictor: aggregate: the strongest sentence per side (max) or noisy-OR over them"
    )
    nei_threshold: float | None = Field(
        None, ge=0, le=1, description="predictor: aggregate: NOT_ENOUGH_INFO when neither side reaches this strength"
    )
    min_relevance: float | None = Field(
        DEFAULT_MIN_RELEVANCE,
        ge=0,
        le=0.5,
        description="predictor: stance_features: NOT_ENOUGH_INFO when no evidence sentence's P(relevant) reaches "
        "this (its probability is 1 - the best relevance; default 0.1: off-topic sentences score below it, "
        "real evidence rarely does, docs/benchmarks.md); null: the fitted model alone",
    )
    template: str = Field("veracity_justifications@1", description="used by predictor: prompt")

    @model_validator(mode="after")
    def _template_used(self) -> VeracityConfig:
        _template_only_when_prompted(self, "veracity", "veracity_justifications@1")
        if self.predictor != "aggregate" and (self.combine != "max" or self.nei_threshold is not None):
            raise ValueError(
                f"veracity.combine and veracity.nei_threshold are only used by predictor: aggregate, "
                f"but veracity.predictor is {self.predictor!r}"
            )
        if self.predictor != "stance_features" and self.min_relevance != DEFAULT_MIN_RELEVANCE:
            raise ValueError(
                f"veracity.min_relevance is only used by predictor: stance_features, but veracity.predictor is "
                f"{self.predictor!r}"
            )
        return self


class LimitsConfig(_Strict):
    max_claim_chars: int = Field(2000, ge=1)
    max_evidence_chars: int = Field(4000, ge=1, description="per sentence")
    max_evidence: int = Field(5000, ge=0)
    warn_evidence: int = Field(
        200, ge=0, description="more evidence sentences than this log a warning before a run (0: never)"
    )


class EncodersConfig(_Strict):
    """How the trained encoder classifiers run (check-worthiness, the evidence model, the veracity encoder)."""

    quantize: Literal["none", "int8"] = Field(
        "none",
        description="int8: dynamic int8 weights on CPU (torch's Linear layers, or ONNX Runtime's MatMuls with "
        "runtime onnx), faster on batches with dev metrics within their CIs (docs/benchmarks.md); "
        "none: fp32 as trained",
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="onnx: run an ONNX export of each trained encoder with onnxruntime (exported once into the "
        "model cache, which needs torch; later runs import neither torch nor transformers; same probabilities "
        "to 1e-6; pip install 'claimflow[onnx]'); torch: the trained model as is; auto: onnx where onnxruntime "
        "is installed and the model exports, else torch",
    )


def _default_backends() -> dict[str, BackendConfig]:
    return {"default": BackendConfig()}


class PipelineConfig(_Strict):
    """Everything a :class:`~claimflow.Verifier` needs; stages name their backend by key."""

    backends: dict[str, BackendConfig] = Field(default_factory=_default_backends)
    stages: tuple[StageName, ...] = STAGE_ORDER
    check_worthiness: CheckWorthinessConfig = CheckWorthinessConfig()
    evidence_stance: EvidenceStanceConfig = EvidenceStanceConfig()
    justify: JustifyConfig = JustifyConfig()
    veracity: VeracityConfig = VeracityConfig()
    limits: LimitsConfig = LimitsConfig()
    encoders: EncodersConfig = EncodersConfig()
    template_dirs: tuple[Path, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if not self.stages:
            raise ValueError("stages: at least one stage is needed")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages: {list(self.stages)} repeats a stage")
        for stage in self.stages:
            key = getattr(self, stage).backend
            if key not in self.backends:
                raise ValueError(f"{stage}.backend: no backend named {key!r}; defined: {sorted(self.backends)}")
        return self

    def with_stages(self, stages: tuple[StageName, ...]) -> PipelineConfig:
        ordered = tuple(s for s in STAGE_ORDER if s in stages)
        return self.model_copy(update={"stages": ordered})

    # --- YAML ----------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        return cls.from_dict(load_yaml(path, "config file", mapping=True), origin=str(path))

    @classmethod
    def from_dict(cls, data: object, origin: str = "config") -> PipelineConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: the top level must be a mapping of settings")
        return validate_config(cls, data, origin)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


_Model = TypeVar("_Model", bound=BaseModel)


def validate_config(cls: type[_Model], data: object, origin: str) -> _Model:
    """``data`` validated as ``cls``; every problem in one :class:`ConfigError` naming ``origin`` and the
    path of each bad key (pipeline configs, A/B specs and training configs read alike)."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin} is invalid: {problems}") from exc

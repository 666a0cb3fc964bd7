"""Training: the trainers write artifact folders (weights + ``provenance.json``) that the predictors
read. Encoder classifiers (full / LoRA, :class:`ClassifierTrainer`), LoRA on a causal LM
(:class:`CausalLoraTrainer`), the multi-task evidence model (:class:`MultitaskTrainer`), soft prompts
(:class:`PromptTuner`), all on one resumable loop (:class:`ResumableLoop`); the stance-features
veracity classifier (:func:`fit_stance_features`); justification datasets (:func:`run_distill`).

The trainers pull in the runtime, the datasets and, when they run, torch: importing this package
imports none of its modules; each name is imported from its module on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claimflow.finetune.classifier import (
        ClassifierConfig,
        ClassifierData,
        ClassifierTrainer,
        evaluate_classifier,
        load_rows,
        record_evaluation,
    )
    from claimflow.finetune.distill import DistillCache, distill_config, run_distill, unlabelled_items
    from claimflow.finetune.loop import LoopSettings, ResumableLoop, warmup_cosine, write_artifact_provenance
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraTrainer
    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer, TaskSchedule
    from claimflow.finetune.multitask_data import (
        MultitaskData,
        TaskExample,
        claim_sentences,
        climate_fever_parts,
        evidence_pairs,
        healthver_parts,
    )
    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig, evaluate_artifact
    from claimflow.finetune.ranked_evidence import claims_of, write_ranked
    from claimflow.finetune.stance_features import fit_stance_features

_MODULES = {
    "classifier": (
        "ClassifierConfig",
        "ClassifierData",
        "ClassifierTrainer",
        "evaluate_classifier",
        "load_rows",
        "record_evaluation",
    ),
    "distill": ("DistillCache", "distill_config", "run_distill", "unlabelled_items"),
    "loop": ("LoopSettings", "ResumableLoop", "warmup_cosine", "write_artifact_provenance"),
    "lora": ("CausalLoraConfig", "CausalLoraTrainer"),
    "multitask": ("MultitaskConfig", "MultitaskTrainer", "TaskSchedule"),
    "multitask_data": (
        "MultitaskData",
        "TaskExample",
        "claim_sentences",
        "climate_fever_parts",
        "evidence_pairs",
        "healthver_parts",
    ),
    "prompt_tuning": ("PromptTuner", "PromptTuningConfig", "evaluate_artifact"),
    "ranked_evidence": ("claims_of", "write_ranked"),
    "stance_features": ("fit_stance_features",),
}
_LAZY = {name: f"{__name__}.{module}" for module, names in _MODULES.items() for name in names}
"""Every public name, and the module it is imported from on first access."""

__all__ = [
    "CausalLoraConfig",
    "CausalLoraTrainer",
    "ClassifierConfig",
    "ClassifierData",
    "ClassifierTrainer",
    "DistillCache",
    "LoopSettings",
    "MultitaskConfig",
    "MultitaskData",
    "MultitaskTrainer",
    "PromptTuner",
    "PromptTuningConfig",
    "ResumableLoop",
    "TaskExample",
    "TaskSchedule",
    "claim_sentences",
    "claims_of",
    "climate_fever_parts",
    "distill_config",
    "evaluate_artifact",
    "evaluate_classifier",
    "evidence_pairs",
    "fit_stance_features",
    "healthver_parts",
    "load_rows",
    "record_evaluation",
    "run_distill",
    "unlabelled_items",
    "warmup_cosine",
    "write_artifact_provenance",
    "write_ranked",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

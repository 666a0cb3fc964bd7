"""What graph nodes call: classifiers (text -> label distribution) and generators (text -> text).

Each classifier has ``predict(inputs) -> list[LabelScores]``, one per input row. Importing this package
loads no model (torch and transformers are imported when a trained predictor is built);
``predictors/multitask_model.py``, the torch module, is imported on its own. Which predictor a pipeline
stage runs is its config's ``predictor`` kind, looked up in :mod:`claimflow.graphs.predictor_registry`.
"""

from claimflow.predictors.encoder import EncoderClassifier, FieldEncoder, read_artifact_provenance
from claimflow.predictors.multitask import MultitaskEncoder, TaskHead
from claimflow.predictors.prompt import PromptClassifier, PromptGenerator
from claimflow.predictors.soft_prompt import SoftPromptClassifier
from claimflow.predictors.stance_aggregate import StanceAggregator, StanceFeatureClassifier, stance_features
from claimflow.predictors.trained import load_trained_classifier

__all__ = [
    "EncoderClassifier",
    "FieldEncoder",
    "MultitaskEncoder",
    "PromptClassifier",
    "PromptGenerator",
    "SoftPromptClassifier",
    "StanceAggregator",
    "StanceFeatureClassifier",
    "TaskHead",
    "load_trained_classifier",
    "read_artifact_provenance",
    "stance_features",
]

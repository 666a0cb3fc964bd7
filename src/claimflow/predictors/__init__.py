"""What graph nodes call: classifiers (text -> label distribution) and generators (text -> text)."""

from claimflow.predictors.prompt import PromptClassifier, PromptGenerator

__all__ = ["PromptClassifier", "PromptGenerator"]

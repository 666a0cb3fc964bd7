"""Verbalizers: from model output (log-probabilities or text) to a distribution over labels."""

from claimflow.verbalizers.logit import LogitVerbalizer
from claimflow.verbalizers.text import TextVerbalizer

__all__ = ["LogitVerbalizer", "TextVerbalizer"]

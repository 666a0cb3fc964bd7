"""Verbalizers: from model output (log-probabilities, text, JSON) to a distribution over labels."""

from claimflow.verbalizers.legacy import ContainsEsVerbalizer
from claimflow.verbalizers.logit import LogitVerbalizer
from claimflow.verbalizers.structured import StructuredVerbalizer, label_model
from claimflow.verbalizers.text import TextVerbalizer

__all__ = ["ContainsEsVerbalizer", "LogitVerbalizer", "StructuredVerbalizer", "TextVerbalizer", "label_model"]

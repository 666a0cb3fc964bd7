"""Structured verbalizer: the model must answer a JSON object whose ``label`` is one of the labels.

The schema is a pydantic model with a ``Literal`` field; backends that support it constrain the
output (llama.cpp grammars) or validate and re-ask (instructor on OpenAI-compatible servers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, create_model

from claimflow.types import LabelScores


def label_model(labels: Sequence[str]) -> type[BaseModel]:
    """A pydantic model ``{"label": Literal[*labels]}``."""
    literal: Any = Literal[tuple(labels)]
    model: type[BaseModel] = create_model("LabelAnswer", label=(literal, ...))
    return model


class StructuredVerbalizer:
    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self.schema = label_model(self.labels)

    def from_object(self, answer: BaseModel | None, raw: str = "", error: str | None = None) -> LabelScores:
        if answer is None:
            return LabelScores(label=None, raw_output=raw, parse_error=error or "no structured answer")
        label = str(answer.label)  # type: ignore[attr-defined]
        return LabelScores(label=label, probabilities={lab: float(lab == label) for lab in self.labels}, raw_output=raw)

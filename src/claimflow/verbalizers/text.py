"""Text verbalizer: rules over generated text, for engines without log-probabilities."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from claimflow.types import LabelScores


class TextVerbalizer:
    """Each label has regular expressions; the label whose pattern matches earliest wins.

    Output that matches no pattern is a recorded parse failure (``label=None``, ``parse_error`` and
    the raw text kept), never a guess.
    """

    def __init__(self, patterns: Mapping[str, Sequence[str]]) -> None:
        if not patterns:
            raise ValueError("a verbalizer needs at least one label")
        self.patterns = {label: [re.compile(p, re.IGNORECASE) for p in pats] for label, pats in patterns.items()}

    @classmethod
    def from_label_words(cls, label_words: Mapping[str, Sequence[str]]) -> TextVerbalizer:
        """Whole-word, case-insensitive matches of each label word."""
        patterns = {
            label: sorted({rf"(?<![\w-]){re.escape(w.strip())}(?![\w-])" for w in words if w.strip()})
            for label, words in label_words.items()
        }
        return cls(patterns)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.patterns)

    def from_text(self, text: str) -> LabelScores:
        best: tuple[int, str] | None = None
        for label, patterns in self.patterns.items():
            for pattern in patterns:
                match = pattern.search(text)
                if match and (best is None or match.start() < best[0]):
                    best = (match.start(), label)
        if best is None:
            return LabelScores(
                label=None,
                probabilities={},
                raw_output=text,
                parse_error=f"no label of {list(self.patterns)} found in the model output",
            )
        label = best[1]
        return LabelScores(
            label=label,
            probabilities={lab: float(lab == label) for lab in self.patterns},
            raw_output=text,
        )

"""Logit verbalizer: label words' log-probabilities -> a distribution over labels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from claimflow.types import LabelScores

Aggregation = Literal["logsumexp", "max", "mean"]


def logsumexp(values: Sequence[float] | np.ndarray) -> float:
    """``log(sum(exp(values)))``, computed stably (numpy only: importing scipy here costs ~0.3 s a start)."""
    array = np.asarray(values, dtype=float)
    top = float(np.max(array))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.sum(np.exp(array - top))))


class LogitVerbalizer:
    """Maps each label to one or more label words (exact continuations, multi-token allowed).

    A label's score aggregates its words' sequence log-probabilities (``logsumexp``: the probability
    that the model says any of them; ``max``; or ``mean``); a softmax over labels, optionally with a
    temperature, gives the distribution. Words the backend did not score (top-k servers) count as
    impossible; when no word of any label was scored, the result records a parse error.

    Contextual calibration (Zhao et al., 2021, "Calibrate Before Use"): given the distribution
    ``p_cf`` the prompt yields for content-free inputs (``"N/A"``, ``""``, ``"[MASK]"``), each
    distribution ``p`` becomes ``W p`` with ``W = diag(p_cf)^-1``, renormalized to sum to one.
    """

    def __init__(
        self,
        label_words: Mapping[str, Sequence[str]],
        *,
        aggregation: Aggregation = "logsumexp",
        temperature: float = 1.0,
        calibration: Mapping[str, float] | None = None,
    ) -> None:
        if not label_words:
            raise ValueError("a verbalizer needs at least one label")
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.label_words = {label: tuple(words) for label, words in label_words.items()}
        self.aggregation: Aggregation = aggregation
        self.temperature = temperature
        self.calibration: dict[str, float] | None = None
        if calibration is not None:
            self.set_calibration(calibration)

    def set_calibration(self, content_free: Mapping[str, float]) -> None:
        """Use ``content_free`` (label -> probability on content-free inputs) to calibrate."""
        missing = set(self.label_words) - set(content_free)
        if missing:
            raise ValueError(f"calibration lacks labels {sorted(missing)}")
        floor = 1e-6  # a label the model never says on content-free input must not divide by 0
        self.calibration = {label: max(float(content_free[label]), floor) for label in self.label_words}

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label_words)

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every label word once, in label order."""
        seen: dict[str, None] = {}
        for words in self.label_words.values():
            for word in words:
                seen.setdefault(word, None)
        return tuple(seen)

    def label_scores(self, logprobs: Mapping[str, float]) -> dict[str, float]:
        """Aggregated log-score per label (``-inf`` when none of its words was scored)."""
        scores: dict[str, float] = {}
        for label, words in self.label_words.items():
            values = [logprobs[w] for w in words if w in logprobs and math.isfinite(logprobs[w])]
            if not values:
                scores[label] = -math.inf
            elif self.aggregation == "logsumexp":
                scores[label] = float(logsumexp(values))
            elif self.aggregation == "max":
                scores[label] = max(values)
            else:
                scores[label] = float(np.mean(values))
        return scores

    def from_logprobs(self, logprobs: Mapping[str, float]) -> LabelScores:
        scores = self.label_scores(logprobs)
        values = np.array(list(scores.values()), dtype=float)
        if not np.isfinite(values).any():
            return LabelScores(
                label=None,
                probabilities={},
                parse_error="none of the label words was scored by the backend",
            )
        scaled = values / self.temperature
        finite = np.isfinite(scaled)
        probs = np.zeros_like(scaled)
        shifted = np.exp(scaled[finite] - np.max(scaled[finite]))  # normalized by its sum: exactly 1 for any logits
        probs[finite] = shifted / shifted.sum()
        if self.calibration is not None:
            probs = probs / np.array([self.calibration[label] for label in scores])
            probs = probs / probs.sum()
        probabilities = {label: float(p) for label, p in zip(scores, probs, strict=True)}
        best = max(probabilities, key=lambda k: probabilities[k])
        return LabelScores(label=best, probabilities=probabilities)

"""Named legacy verbalizers, kept to reproduce published numbers exactly."""

from __future__ import annotations

from claimflow.types import LabelScores


class ContainsEsVerbalizer:
    """The check-worthiness paper's answer rule (Sec. III-C): an answer containing ``"es"`` is
    ``Yes``, anything else ``No``. It never fails to parse, so it hides non-answers: use it only to
    reproduce the paper; the logit verbalizer is the default."""

    labels = ("Yes", "No")

    def from_text(self, text: str) -> LabelScores:
        label = "Yes" if "es" in text else "No"
        return LabelScores(
            label=label, probabilities={"Yes": float(label == "Yes"), "No": float(label == "No")}, raw_output=text
        )

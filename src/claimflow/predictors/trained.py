"""Load a trained classifier artifact of either kind for one task, by its provenance."""

from __future__ import annotations

import json
from pathlib import Path

from claimflow.errors import ModelError
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import EncoderClassifier
from claimflow.predictors.multitask import MultitaskEncoder, TaskHead

MULTITASK_HEADS = {"check_worthiness": "claim", "stance": "stance", "relevance": "relevance", "claim": "claim"}
"""Task names (the label-map tasks) -> the multi-task head that serves them."""


def load_trained_classifier(
    artifact: Path, task: str, *, store: ModelStore | None = None
) -> EncoderClassifier | TaskHead:
    """An encoder-classifier artifact as is, or the ``task`` head of a multi-task artifact."""
    try:
        kind = json.loads((artifact / "provenance.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{artifact} is not a trained-classifier artifact: {exc}") from exc
    if kind == "multitask_encoder":
        head = MULTITASK_HEADS.get(task)
        if head is None:
            raise ModelError(f"{artifact}: a multi-task artifact has no head for task {task!r}")
        return MultitaskEncoder(artifact, store=store).head(head)
    return EncoderClassifier(artifact, store=store)

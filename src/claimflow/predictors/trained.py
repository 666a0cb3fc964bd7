"""Load a trained classifier artifact of either kind for one task, by its provenance; optionally
quantise its encoder to int8 for CPU inference (:func:`quantize_int8`)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

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


def quantize_int8(predictor: EncoderClassifier | MultitaskEncoder | TaskHead) -> None:
    """Swap the loaded encoder's ``Linear`` layers for torch int8 dynamic ones, in place (CPU only).

    A LoRA model is merged into its base first. Measured on the shipped encoders by
    ``benchmarks/encoder_int8.py`` (docs/benchmarks.md): 1.4-1.5x faster on CPU with dev metrics
    within their bootstrap CI. Cached prefetched scores are dropped, since they came from the fp32 model.
    """
    import torch

    holder: Any = predictor.encoder if isinstance(predictor, TaskHead) else predictor
    model = holder.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        holder.model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8).eval()
    holder.prefetched.clear()
    holder.quantization = "int8"

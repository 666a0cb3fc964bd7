"""Load a trained classifier artifact of either kind for one task, by its provenance; load an encoder
on the runtime a pipeline asks for (:func:`load_encoder`: ONNX Runtime where it can, else torch);
optionally quantise a torch encoder to int8 for CPU inference (:func:`quantize_int8`)."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Literal, TypeVar

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import EncoderClassifier
from claimflow.predictors.multitask import MultitaskEncoder, TaskHead

__all__ = ["MULTITASK_HEADS", "load_encoder", "load_trained_classifier", "quantize_int8"]

log = logging.getLogger(__name__)
E = TypeVar("E", EncoderClassifier, MultitaskEncoder)

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


def load_encoder(
    cls: type[E],
    artifact: Path,
    *,
    store: ModelStore | None = None,
    runtime: Literal["auto", "torch", "onnx"] = "auto",
    quantize: Literal["none", "int8"] = "none",
) -> E:
    """An encoder predictor (``cls``) on ``runtime``: ``onnx`` (an error when ONNX Runtime cannot run it),
    ``torch``, or ``auto`` (the default of ``encoders.runtime``): ONNX Runtime when it is installed and
    the model exports, else torch, logged. ``quantize: int8`` applies on whichever runs it."""
    if runtime in ("auto", "onnx"):
        try:
            return cls(artifact, store=store, runtime="onnx", quantize=quantize)
        except (BackendUnavailableError, ModelError) as exc:
            if runtime == "onnx":
                raise
            log.info("%s runs on torch: ONNX Runtime cannot run it here (%s)", artifact.name, exc)
    model = cls(artifact, store=store)
    if quantize == "int8":
        quantize_int8(model)
    return model


def quantize_int8(predictor: EncoderClassifier | MultitaskEncoder | TaskHead) -> None:
    """Swap the loaded encoder's ``Linear`` layers for torch int8 dynamic ones, in place (CPU only).

    A LoRA model is merged into its base first. Measured on the shipped encoders by
    ``benchmarks/encoder_int8.py`` (docs/benchmarks.md): 1.4-1.5x faster on CPU with dev metrics
    within their bootstrap CI. Cached prefetched scores are dropped, since they came from the fp32 model.
    """
    import torch

    holder: Any = predictor.encoder if isinstance(predictor, TaskHead) else predictor
    if getattr(holder, "graph", None) is not None:
        raise ModelError(f"{holder.artifact} runs on ONNX Runtime: load it with quantize='int8' instead")
    model = holder.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        holder.model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8).eval()
    holder.prefetched.clear()
    holder.quantization = "int8"

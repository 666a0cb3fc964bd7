"""Export a loaded torch encoder to ONNX (torch's ``torch.export``-based exporter), for
:mod:`claimflow.predictors.onnx_runtime`. Imports torch: import it lazily."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from claimflow.errors import ModelError

__all__ = ["export_classifier", "export_multitask"]

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Outputs(nn.Module):
    """``forward(*inputs) -> tuple of logits`` around ``call(encoded)``, the inputs named by ``names``."""

    def __init__(self, model: nn.Module, call: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, ...]]) -> None:
        super().__init__()
        self.model = model
        self.call = call
        self.names: tuple[str, ...] = ()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.call(dict(zip(self.names, inputs, strict=True)))


def _merged(model: Any) -> Any:
    """A PEFT model merged into its base (the graph then holds plain weights)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _export(module: nn.Module, example: Mapping[str, Any], names: Sequence[str], path: Path) -> None:
    present = [name for name in INPUTS if name in example]  # e.g. no token_type_ids for MPNet
    if isinstance(module, _Outputs):
        module.names = tuple(present)
    args = tuple(torch.as_tensor(example[name]) for name in present)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=4096)
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(),
                args,
                input_names=present,
                output_names=list(names),
                dynamic_shapes=(tuple({0: batch, 1: seq} for _ in present),),  # forward(*inputs): one varargs
                dynamo=True,
                verbose=False,
            )
            if program is None:
                raise ModelError("torch.onnx.export returned no program")
            program.save(str(path))
    except ModelError:
        raise
    except Exception as exc:  # torch.export raises many kinds
        raise ModelError(f"cannot export the encoder to ONNX: {exc}") from exc
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_classifier(model: Any, example: Mapping[str, Any], path: Path) -> None:
    """A sequence classifier (``model(**encoded).logits``) as a graph with one output, ``logits``."""
    inner = _merged(model)
    _export(_Outputs(inner, lambda encoded: (inner(**encoded).logits,)), example, ["logits"], path)


def export_multitask(model: Any, tasks: Sequence[str], example: Mapping[str, Any], path: Path) -> None:
    """The multi-task model (a :class:`~claimflow.predictors.multitask_model.MultiTaskModel`) as a graph
    with one output per task head, named by the task."""
    model.backbone = _merged(model.backbone)

    def heads(encoded: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        out = model.all_heads(encoded, tasks)
        return tuple(out[task] for task in tasks)

    _export(_Outputs(model, heads), example, list(tasks), path)

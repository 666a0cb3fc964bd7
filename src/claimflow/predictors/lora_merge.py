"""Plain LoRA adapters merged into their base model's weights without importing PEFT.

A PEFT LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``) adds ``B @ A * alpha / r``
to each target layer's weight and replaces the ``modules_to_save`` (e.g. a classification head).
For inference that is one in-place update of the base model: the same outputs as a ``PeftModel``
(up to float rounding), and the ~2 s ``import peft`` is never paid. Adapters that use more than plain
LoRA (DoRA, per-layer ranks, LoRA biases, tied or replicated layers, ...) are left to PEFT:
:func:`mergeable` says which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["merge_lora_adapter", "mergeable"]

_PREFIX = "base_model.model."
_PLAIN: dict[str, Any] = {  # settings a plain LoRA has; anything else goes to PEFT
    "peft_type": "LORA",
    "use_dora": False,
    "bias": "none",
    "lora_bias": False,
    "fan_in_fan_out": False,
}
_EMPTY = ("rank_pattern", "alpha_pattern", "layer_replication", "trainable_token_indices", "target_parameters")


def _config(artifact: Path) -> dict[str, Any] | None:
    try:
        config: dict[str, Any] = json.loads((artifact / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config


def mergeable(artifact: Path) -> bool:
    """Whether the adapter in ``artifact`` is a plain LoRA :func:`merge_lora_adapter` can apply."""
    config = _config(artifact)
    if config is None or not (artifact / "adapter_model.safetensors").exists():
        return False
    if any(config.get(key, value) != value for key, value in _PLAIN.items()):
        return False
    return not any(config.get(key) for key in _EMPTY)


def merge_lora_adapter(model: Any, artifact: Path) -> None:
    """Add the LoRA deltas of ``artifact`` to ``model``'s weights and copy its saved modules in
    (``model`` is the bare base, e.g. an ``AutoModelForSequenceClassification``). Raises ValueError
    when the adapter is not :func:`mergeable` or names a layer or shape the model lacks."""
    import torch
    from safetensors.torch import load_file

    if not mergeable(artifact):
        raise ValueError(f"{artifact} is not a plain LoRA adapter")
    config = _config(artifact)
    assert config is not None
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / (r**0.5) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(artifact / "adapter_model.safetensors"))
    own = dict(model.named_parameters())
    pairs: dict[str, dict[str, Any]] = {}
    plain: dict[str, Any] = {}
    for key, value in tensors.items():
        name = key.removeprefix(_PREFIX)
        for part in ("lora_A", "lora_B"):
            marker = f".{part}.weight"
            if name.endswith(marker):
                pairs.setdefault(name.removesuffix(marker), {})[part] = value
                break
        else:
            plain[name.replace(".modules_to_save.default.", ".")] = value
    with torch.no_grad():
        for layer, pair in sorted(pairs.items()):
            weight = own.get(f"{layer}.weight")
            if weight is None or set(pair) != {"lora_A", "lora_B"}:
                raise ValueError(f"{artifact}: LoRA layer {layer!r} does not match the base model")
            delta = (pair["lora_B"].float() @ pair["lora_A"].float()) * scale
            if delta.shape != weight.shape:
                raise ValueError(f"{artifact}: {layer} delta is {tuple(delta.shape)}, the weight {tuple(weight.shape)}")
            weight.add_(delta.to(weight.dtype))
        for name, value in plain.items():
            if name not in own or own[name].shape != value.shape:
                raise ValueError(f"{artifact}: saved tensor {name!r} does not match the base model")
            own[name].copy_(value.to(own[name].dtype))

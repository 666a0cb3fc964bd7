"""The multi-task evidence model: one shared encoder, one linear classification head per task.

A batch may mix tasks: the whole batch goes through the encoder once (pairs and single sentences
padded together), and each item's pooled vector goes to its task's head. Saved as the encoder
(a full checkpoint, or a PEFT LoRA adapter) plus ``heads.safetensors`` and ``heads.json``.

Imports torch at module level: import it lazily (:mod:`claimflow.predictors.multitask` does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from claimflow.predictors.encoder import ENCODER_DELTA

Pooling = Literal["mean", "cls"]
HEADS_FILE, HEADS_CONFIG = "heads.safetensors", "heads.json"


class MultiTaskModel(nn.Module):
    """``backbone`` (an HF encoder, possibly PEFT-wrapped) + ``heads[task]: Linear(hidden, n_labels)``."""

    def __init__(
        self, backbone: Any, labels: Mapping[str, Sequence[str]], *, pooling: Pooling = "mean", dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.labels = {task: tuple(names) for task, names in labels.items()}
        self.pooling: Pooling = pooling
        hidden = int(backbone.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(hidden, len(names)) for task, names in self.labels.items()})
        self.compact = False
        """Save a full fine-tune as :data:`ENCODER_DELTA` (trained tensors only, fp16), not a whole checkpoint."""

    def pool(self, encoded: Mapping[str, torch.Tensor]) -> torch.Tensor:
        states = self.backbone(**encoded).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, encoded: Mapping[str, torch.Tensor], tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        """Logits by task for the rows of that task (in batch order); ``tasks`` names each row's task."""
        pooled = self.dropout(self.pool(encoded))
        out: dict[str, torch.Tensor] = {}
        for task in dict.fromkeys(tasks):
            rows = torch.tensor([i for i, t in enumerate(tasks) if t == task], dtype=torch.long, device=pooled.device)
            out[task] = self.heads[task](pooled.index_select(0, rows))
        return out

    def all_heads(self, encoded: Mapping[str, torch.Tensor], tasks: Sequence[str]) -> dict[str, torch.Tensor]:
        """Logits of every row under each of ``tasks`` (one encoder pass serves several heads)."""
        pooled = self.pool(encoded)
        return {task: self.heads[task](pooled) for task in tasks}

    def save_pretrained(self, folder: str) -> None:
        from safetensors.torch import save_file

        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        if self.compact:
            trained = {
                k: v.detach().to(torch.float16).contiguous()
                for k, v in self.backbone.named_parameters()
                if v.requires_grad
            }
            save_file(trained, str(path / ENCODER_DELTA))
        else:
            self.backbone.save_pretrained(str(path))
        state = {k: v.detach().contiguous() for k, v in self.heads.state_dict().items()}
        save_file(state, str(path / HEADS_FILE))
        config = {"labels": {t: list(n) for t, n in self.labels.items()}, "pooling": self.pooling}
        (path / HEADS_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")

    def load_delta(self, folder: Path) -> None:
        """Overlay :data:`ENCODER_DELTA` on the base backbone (a compact full fine-tune)."""
        from claimflow.predictors.encoder import overlay_delta

        overlay_delta(self.backbone, folder / ENCODER_DELTA)

    def load_heads(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.heads.load_state_dict(load_file(str(folder / HEADS_FILE)))


def encode_items(tokenizer: Any, items: Sequence[tuple[str, str | None]], max_length: int) -> Any:
    """Tokenize (text_a, text_b) items; single sentences (text_b ``None``) and pairs may share a batch."""
    encoded = [
        tokenizer(a, b, truncation="longest_first" if b is not None else True, max_length=max_length) for a, b in items
    ]
    return tokenizer.pad(encoded, return_tensors="pt")

"""GGUF -> Hugging Face checkpoint, for the transformers (trainable) path. Done once, cached."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.models.store import ModelStore, ResolvedModel, sha256_file

log = logging.getLogger(__name__)


def hf_checkpoint(resolved: ResolvedModel, store: ModelStore) -> Path:
    """A plain safetensors checkpoint (dequantized, float32) of a GGUF model, converted on first use.

    The folder name carries the GGUF's sha256, so a different file never reuses a stale conversion.
    """
    if resolved.format != "gguf":
        return resolved.path
    sha = resolved.sha256 or sha256_file(resolved.path)
    target = store.cache_dir / "hf" / f"{Path(resolved.name).stem}-{sha[:12]}"
    if (target / "claimflow-conversion.json").exists():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailableError(
            "converting a GGUF for transformers needs torch, transformers and gguf: pip install 'claimflow[train]'"
        ) from exc
    log.info("converting %s to a transformers checkpoint in %s (once)", resolved.path, target)
    folder, name = str(resolved.path.parent), resolved.path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many kinds here
        raise ModelError(f"transformers could not load {resolved.path} as GGUF: {exc}") from exc
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "claimflow-conversion.json").write_text(
        json.dumps({"source": str(resolved.path), "source_sha256": sha, "model": resolved.name}, indent=2),
        encoding="utf-8",
    )
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target

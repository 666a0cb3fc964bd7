"""The model store: named local models (:data:`CATALOG`) resolved to verified files
(:class:`ModelStore`, sha256-checked), and GGUF models converted once to a Hugging Face checkpoint
(:func:`hf_checkpoint`). ``claimflow models pull`` is :func:`claimflow.models.pull.pull` (not
re-exported here: the name would hide the ``pull`` module). Importing this package loads no engine.
"""

from __future__ import annotations

from claimflow.models.catalog import CATALOG, ModelSpec
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import (
    CACHE_ENV,
    ModelStatus,
    ModelStore,
    ResolvedModel,
    assemble_parts,
    default_cache_dir,
    sha256_file,
)

__all__ = [
    "CACHE_ENV",
    "CATALOG",
    "ModelSpec",
    "ModelStatus",
    "ModelStore",
    "ResolvedModel",
    "assemble_parts",
    "default_cache_dir",
    "hf_checkpoint",
    "sha256_file",
]

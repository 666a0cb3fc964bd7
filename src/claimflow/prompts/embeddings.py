"""Sentence embeddings for kNN / MMR demo selection, cached on disk by content hash (SQLite)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from claimflow.errors import BackendUnavailableError
from claimflow.models.store import ModelStore


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalized embeddings, one row per text."""
        ...


class EmbeddingCache:
    """``(model, sha256(text)) -> float32 vector`` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path)
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, key TEXT, vector BLOB, PRIMARY KEY (model, key))"
        )

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, model: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        keys = [self.key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})", [model, *chunk]
            )
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def put(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [
            (model, self.key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors, strict=True)
        ]
        with self.connection:
            self.connection.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)


class SentenceTransformerEmbedder:
    """A sentence-transformers model (default: MiniLM-L6 from the model store), with a disk cache."""

    def __init__(self, model: str = "minilm-l6", *, store: ModelStore | None = None, batch_size: int = 64) -> None:
        store = store or ModelStore()
        resolved = store.resolve(model)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BackendUnavailableError(
                "embeddings need sentence-transformers: pip install 'claimflow[local]'"
            ) from exc
        self.name = model
        self.model: Any = SentenceTransformer(resolved.location, device="cpu")
        self.batch_size = batch_size
        self.cache = EmbeddingCache(store.cache_dir / "embeddings.sqlite")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        cached = self.cache.get(self.name, texts)
        missing = sorted({t for t in texts if EmbeddingCache.key(t) not in cached})
        if missing:
            vectors = self.model.encode(
                missing, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
            self.cache.put(self.name, missing, vectors)
            cached.update(
                {EmbeddingCache.key(t): np.asarray(v, dtype=np.float32) for t, v in zip(missing, vectors, strict=True)}
            )
        return np.stack([cached[EmbeddingCache.key(t)] for t in texts]) if texts else np.zeros((0, 0), np.float32)

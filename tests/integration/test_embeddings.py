"""kNN demo selection with the real MiniLM-L6 from the model store; embeddings cached on disk."""

from __future__ import annotations

import pytest

from claimflow.models.store import ModelStore
from claimflow.prompts.demos import Demo, DemoSelector
from claimflow.prompts.embeddings import SentenceTransformerEmbedder

pytestmark = pytest.mark.slow


def test_knn_with_minilm_and_the_disk_cache() -> None:
    pool = [
        Demo("a", {"claim": "Unemployment fell to 4 percent."}, "Yes"),
        Demo("b", {"claim": "The jobless rate dropped last quarter."}, "Yes"),
        Demo("c", {"claim": "I enjoy long walks on the beach."}, "No"),
        Demo("d", {"claim": "My favourite colour is blue."}, "No"),
    ]
    embedder = SentenceTransformerEmbedder("minilm-l6")
    chosen = DemoSelector(pool, ("claim",), selector="knn", embedder=embedder).select(
        {"claim": "The unemployment rate went down."}, 2
    )
    assert {d.id for d in chosen} == {"a", "b"}
    vectors = embedder.embed(["Unemployment fell to 4 percent."])
    assert vectors.shape == (1, 384) and abs(float((vectors**2).sum()) - 1.0) < 1e-4
    # a second embedder (a new process would do the same) reads the cache instead of the model
    again = SentenceTransformerEmbedder("minilm-l6", store=ModelStore())
    cached = again.cache.get("minilm-l6", ["Unemployment fell to 4 percent."])
    assert len(cached) == 1

"""A backend wrapper that caches model calls by content in the run store's SQLite file.

The key covers the engine, the model (and its sha256), and every field of the request, so a
cached answer is only reused for exactly the same prompt, candidates and generation settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from claimflow.evals.store import RunStore, content_key
from claimflow.llm.base import Backend, Generation, GenRequest, M, Message, ScoreRequest
from claimflow.types import ModelProvenance


class CachingBackend(Backend):
    def __init__(self, inner: Backend, store: RunStore) -> None:
        super().__init__(inner.model_id)
        self.inner = inner
        self.store = store
        self.kind = inner.kind
        self.capabilities = inner.capabilities
        self.stats = inner.stats  # misses are counted by the inner backend; hits cost nothing
        self.hits = 0
        self._identity = inner.provenance().model_dump()

    def _key(self, op: str, request: Any) -> str:
        return content_key({"op": op, "model": self._identity, "request": asdict(request)})

    def score(self, requests: Sequence[ScoreRequest]) -> list[dict[str, float]]:
        return self._through("score", requests, self.inner.score, lambda v: {k: float(x) for k, x in v.items()})

    def generate(self, requests: Sequence[GenRequest]) -> list[Generation]:
        return self._through("generate", requests, self.inner.generate, lambda v: Generation(**v), asdict)

    def _through(self, op: str, requests: Sequence[Any], call: Any, load: Any, dump: Any = lambda v: v) -> list[Any]:
        keys = [self._key(op, r) for r in requests]
        results: list[Any] = [None] * len(requests)
        missing = []
        for i, key in enumerate(keys):
            value = self.store.cached(key)
            if value is None:
                missing.append(i)
            else:
                results[i] = load(value)
                self.hits += 1
        if missing:
            fresh = call([requests[i] for i in missing])
            for i, value in zip(missing, fresh, strict=True):
                self.store.cache(keys[i], dump(value))
                results[i] = value
        return results

    def generate_structured(self, messages: Sequence[Message], response_model: type[M]) -> M:
        key = content_key(
            {
                "op": "structured",
                "model": self._identity,
                "messages": [asdict(m) for m in messages],
                "schema": response_model.model_json_schema(),
            }
        )
        value = self.store.cached(key)
        if value is not None:
            self.hits += 1
            return response_model.model_validate(value)
        answer = self.inner.generate_structured(messages, response_model)
        self.store.cache(key, answer.model_dump(mode="json"))
        return answer

    def provenance(self) -> ModelProvenance:
        return self.inner.provenance()

    def close(self) -> None:
        self.inner.close()

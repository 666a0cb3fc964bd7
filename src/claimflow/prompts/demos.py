"""n-shot demonstrations: a labelled pool, selectors, ordering policies and rendering.

Selectors: ``random`` (seeded per query), ``balanced`` (label round-robin), ``knn`` (cosine
similarity of sentence embeddings) and ``mmr`` (maximal marginal relevance: relevance minus
redundancy). Orders: ``as_sampled``, ``similarity_ascending`` (the nearest demo last, right before
the query) and ``label_interleaved``. The item being predicted is never among its own demos: it is
excluded by id and by identical text.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from claimflow.errors import InputError
from claimflow.io import iter_jsonl
from claimflow.llm.base import Message
from claimflow.prompts.embeddings import Embedder
from claimflow.prompts.template import PromptTemplate, RenderedPrompt

SelectorName = Literal["random", "balanced", "knn", "mmr"]
OrderName = Literal["as_sampled", "similarity_ascending", "label_interleaved"]
StyleName = Literal["chat", "inline"]


@dataclass(frozen=True)
class Demo:
    id: str
    inputs: Mapping[str, Any]
    label: str

    def text(self, names: Sequence[str]) -> str:
        return query_text(self.inputs, names)


def query_text(inputs: Mapping[str, Any], names: Sequence[str]) -> str:
    """The text a demo or query is compared by: its template inputs in order."""
    parts = []
    for name in names:
        value = inputs.get(name, "")
        parts.append(" ".join(value) if isinstance(value, list) else str(value))
    return "\n".join(parts)


def load_pool(path: Path, template: PromptTemplate) -> list[Demo]:
    """A JSONL pool: one ``{"id", "label", <each template input>}`` object per line."""
    demos = []
    for number, record in iter_jsonl(str(path)):
        missing = [k for k in ("id", "label", *template.inputs) if k not in record]
        if missing:
            raise InputError(f"{path}:{number}: demo lacks {missing} (template {template.ref} needs them)")
        if record["label"] not in template.labels:
            raise InputError(f"{path}:{number}: label {record['label']!r} is not one of {list(template.labels)}")
        demos.append(Demo(str(record["id"]), {k: record[k] for k in template.inputs}, record["label"]))
    if not demos:
        raise InputError(f"demo pool {path} is empty")
    return demos


@dataclass
class DemoSelector:
    pool: Sequence[Demo]
    input_names: Sequence[str]
    selector: SelectorName = "random"
    order: OrderName = "as_sampled"
    seed: int = 0
    mmr_lambda: float = 0.5
    embedder: Embedder | None = None
    _pool_vectors: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        needs_embeddings = self.selector in ("knn", "mmr") or self.order == "similarity_ascending"
        if needs_embeddings and self.embedder is None:
            raise InputError(f"demo selector {self.selector!r} / order {self.order!r} needs an embedding model")

    def _vectors(self) -> np.ndarray:
        if self._pool_vectors is None:
            assert self.embedder is not None
            self._pool_vectors = self.embedder.embed([d.text(self.input_names) for d in self.pool])
        return self._pool_vectors

    def select(self, inputs: Mapping[str, Any], k: int, exclude_id: str | None = None) -> list[Demo]:
        """``k`` demos for the query ``inputs``, never the query itself."""
        if k <= 0:
            return []
        text = query_text(inputs, self.input_names)
        allowed = [i for i, d in enumerate(self.pool) if d.id != exclude_id and d.text(self.input_names) != text]
        rng = random.Random(int(hashlib.sha256(f"{self.seed}|{text}".encode()).hexdigest()[:16], 16))
        sims: np.ndarray | None = None
        if self.embedder is not None and (self.selector in ("knn", "mmr") or self.order == "similarity_ascending"):
            query = self.embedder.embed([text])[0]
            sims = self._vectors() @ query
        if self.selector == "random":
            chosen = rng.sample(allowed, min(k, len(allowed)))
        elif self.selector == "balanced":
            chosen = self._balanced(allowed, k, rng)
        elif self.selector == "knn":
            assert sims is not None
            chosen = sorted(allowed, key=lambda i: -sims[i])[:k]
        else:
            assert sims is not None
            chosen = self._mmr(allowed, sims, k)
        return [self.pool[i] for i in self._ordered(chosen, sims)]

    def _balanced(self, allowed: list[int], k: int, rng: random.Random) -> list[int]:
        by_label: dict[str, list[int]] = defaultdict(list)
        for i in allowed:
            by_label[self.pool[i].label].append(i)
        for indices in by_label.values():
            rng.shuffle(indices)
        labels = sorted(by_label)
        rng.shuffle(labels)
        chosen: list[int] = []
        while len(chosen) < k and any(by_label.values()):
            for label in labels:
                if by_label[label] and len(chosen) < k:
                    chosen.append(by_label[label].pop())
        return chosen

    def _mmr(self, allowed: list[int], sims: np.ndarray, k: int) -> list[int]:
        vectors = self._vectors()
        chosen: list[int] = []
        candidates = list(allowed)
        while candidates and len(chosen) < k:
            redundancy = (vectors[candidates] @ vectors[chosen].T).max(axis=1) if chosen else np.zeros(len(candidates))
            scores = self.mmr_lambda * sims[candidates] - (1 - self.mmr_lambda) * redundancy
            best = candidates[int(np.argmax(scores))]
            chosen.append(best)
            candidates.remove(best)
        return chosen

    def _ordered(self, chosen: list[int], sims: np.ndarray | None) -> list[int]:
        if self.order == "similarity_ascending":
            assert sims is not None
            return sorted(chosen, key=lambda i: sims[i])
        if self.order == "label_interleaved":
            by_label: dict[str, list[int]] = defaultdict(list)
            for i in chosen:
                by_label[self.pool[i].label].append(i)
            out: list[int] = []
            while any(by_label.values()):
                for label in list(by_label):
                    if by_label[label]:
                        out.append(by_label[label].pop(0))
            return out
        return chosen


def answer_text(template: PromptTemplate, label: str) -> str:
    """What the assistant says for ``label``: the answer prefix plus the label's first word."""
    words = (template.label_words or {})[label]
    return f"{template.assistant_prefix}{words[0]}".strip()


def with_demos(
    template: PromptTemplate, query: RenderedPrompt, demos: Sequence[Demo], style: StyleName
) -> RenderedPrompt:
    """``query`` with ``demos`` as prior chat turns (``chat``) or inside the user message (``inline``)."""
    if not demos:
        return query
    system = [m for m in query.messages if m.role == "system"]
    user = [m for m in query.messages if m.role != "system"]
    shots = []
    for demo in demos:
        rendered = template.render(demo.inputs)
        demo_user = next(m.content for m in rendered.messages if m.role == "user")
        shots.append((demo_user, answer_text(template, demo.label)))
    if style == "chat":
        turns = [m for q, a in shots for m in (Message("user", q), Message("assistant", a))]
        messages = (*system, *turns, *user)
    else:
        block = "\n\n".join(f"{q}\n{a}" for q, a in shots)
        last = user[-1]
        messages = (*system, *user[:-1], Message(last.role, f"{block}\n\n{last.content}"))
    return RenderedPrompt(
        messages=tuple(messages), assistant_prefix=query.assistant_prefix, template_ref=query.template_ref
    )

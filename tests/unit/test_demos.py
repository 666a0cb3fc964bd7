"""n-shot demo selection on a toy pool with a toy embedder (bag of words)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from claimflow.errors import InputError
from claimflow.llm.fake import FakeBackend
from claimflow.predictors import PromptClassifier
from claimflow.prompts import TemplateRegistry
from claimflow.prompts.demos import Demo, DemoSelector, load_pool, with_demos

VOCAB = ["tax", "rate", "jobs", "weather", "rain", "sun", "vaccine", "virus"]


class BagOfWords:
    name = "bow"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows = []
        for text in texts:
            v = np.array([text.lower().count(w) for w in VOCAB], dtype=np.float32) + 1e-3
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


POOL = [
    Demo("t1", {"claim": "The tax rate rose."}, "Yes"),
    Demo("t2", {"claim": "Tax cuts created jobs."}, "Yes"),
    Demo("t3", {"claim": "The tax rate fell, tax rate news."}, "Yes"),
    Demo("w1", {"claim": "I love rain and sun."}, "No"),
    Demo("w2", {"claim": "The weather is nice."}, "No"),
    Demo("v1", {"claim": "The vaccine stops the virus."}, "Yes"),
]
QUERY = {"claim": "What is the tax rate?"}


def selector(**kwargs: object) -> DemoSelector:
    return DemoSelector(POOL, ("claim",), **kwargs)  # type: ignore[arg-type]


def test_random_is_seeded_and_deterministic_per_query() -> None:
    a = [d.id for d in selector(seed=1).select(QUERY, 3)]
    assert a == [d.id for d in selector(seed=1).select(QUERY, 3)]
    assert len(set(a)) == 3
    seeds = {tuple(d.id for d in selector(seed=s).select(QUERY, 3)) for s in range(10)}
    assert len(seeds) > 1


def test_balanced_alternates_labels() -> None:
    labels = [d.label for d in selector(selector="balanced").select(QUERY, 4)]
    assert sorted(labels) == ["No", "No", "Yes", "Yes"]


def test_knn_takes_the_nearest_and_orders_them_nearest_last() -> None:
    chosen = selector(selector="knn", embedder=BagOfWords(), order="similarity_ascending").select(QUERY, 2)
    assert {d.id for d in chosen} == {"t1", "t3"}
    bow = BagOfWords()
    sims = bow.embed([d.text(("claim",)) for d in chosen]) @ bow.embed(["What is the tax rate?"])[0]
    assert sims[0] <= sims[1]  # nearest demo last, right before the query


def test_mmr_trades_relevance_for_diversity() -> None:
    knn = {d.id for d in selector(selector="knn", embedder=BagOfWords()).select(QUERY, 2)}
    mmr = {d.id for d in selector(selector="mmr", embedder=BagOfWords(), mmr_lambda=0.3).select(QUERY, 2)}
    assert knn == {"t1", "t3"}  # two near-duplicates
    assert "t1" in mmr or "t3" in mmr
    assert mmr != knn  # the second pick is a different kind of demo


def test_label_interleaved_order() -> None:
    chosen = selector(selector="balanced", order="label_interleaved").select(QUERY, 4)
    labels = [d.label for d in chosen]
    assert labels[0] != labels[1] and labels[2] != labels[3]


@pytest.mark.parametrize("kind", ["random", "balanced", "knn", "mmr"])
def test_the_item_being_predicted_is_never_its_own_demo(kind: str) -> None:
    sel = selector(selector=kind, embedder=BagOfWords())
    for demo in POOL:
        ids = {d.id for d in sel.select(demo.inputs, 5, exclude_id=demo.id)}
        assert demo.id not in ids
        # even without an id, identical text is excluded
        assert demo.id not in {d.id for d in sel.select(demo.inputs, 5)}


def test_embedding_selectors_need_an_embedder() -> None:
    with pytest.raises(InputError, match="embedding"):
        selector(selector="knn")


def test_chat_and_inline_rendering_and_provenance() -> None:
    template = TemplateRegistry(include_env=False).get("checkworthiness_short@1")
    query = template.render(QUERY)
    chat = with_demos(template, query, POOL[:2], "chat")
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert chat.messages[1].content == "Yes" and "The tax rate rose." in chat.messages[0].content
    inline = with_demos(template, query, POOL[:2], "inline")
    assert len(inline.messages) == 1
    assert inline.messages[0].content.index("Tax cuts created jobs.\nYes") < inline.messages[0].content.index(
        "What is the tax rate?"
    )
    fake = FakeBackend()
    classifier = PromptClassifier(template, fake, demos=selector(seed=3), n_shots=2)
    (scores,) = classifier.predict([QUERY], ids=["q"])
    assert len(scores.demo_ids) == 2
    assert len(fake.score_requests[0].messages) == 5


def test_pool_files_are_validated(tmp_path: Path) -> None:
    template = TemplateRegistry(include_env=False).get("checkworthiness_short@1")
    good = tmp_path / "pool.jsonl"
    good.write_text("\n".join(json.dumps({"id": d.id, "label": d.label, **d.inputs}) for d in POOL), encoding="utf-8")
    assert len(load_pool(good, template)) == len(POOL)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "label": "Maybe", "claim": "c"}), encoding="utf-8")
    with pytest.raises(InputError, match="Maybe"):
        load_pool(bad, template)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"id": "x", "label": "Yes"}), encoding="utf-8")
    with pytest.raises(InputError, match="claim"):
        load_pool(missing, template)


def test_pipeline_config_wires_demos(tmp_path: Path) -> None:
    from claimflow import PipelineConfig, Verifier

    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps({"id": d.id, "label": d.label, **d.inputs}) for d in POOL), encoding="utf-8")
    config = PipelineConfig.from_dict(
        {
            "check_worthiness": {"predictor": "prompt", "demos": {"pool": str(pool), "k": 3, "selector": "balanced"}},
            "stages": ["check_worthiness"],
        }
    )
    result = Verifier(config, backends={"default": FakeBackend()}).verify("What is the tax rate?")
    assert result.check_worthiness is not None and len(result.check_worthiness.demo_ids) == 3

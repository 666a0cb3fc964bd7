"""A/B runs on the fake backend: storage, resume, the call cache, spec validation, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from claimflow.errors import ConfigError
from claimflow.evals.ab import ABSpec, items_for, run_ab
from claimflow.evals.report import build_report, to_html, to_markdown
from claimflow.evals.store import RunStore
from claimflow.llm.base import ScoreRequest
from claimflow.llm.fake import FakeBackend


def _claims(path: Path, n: int = 40) -> Path:
    rows = []
    for i in range(n):
        worthy = i % 3 == 0
        text = f"The deficit grew by {i} billion dollars." if worthy else f"I thank everyone here tonight, number {i}."
        rows.append(
            {
                "id": f"s{i}",
                "claim": text,
                "evidence": [],
                "label": "Yes" if worthy else "No",
                "split": "dev",
                "source": "test",
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def smart_or_dumb(request: ScoreRequest) -> dict[str, float]:
    """The long template 'knows' (digits -> Yes); the short one always says No."""
    text = request.messages[-1].content
    if "auxiliary questions" in text:
        yes = 0.9 if any(c.isdigit() for c in text.split("Text:")[-1].split("number")[0]) else 0.1
    else:
        yes = 0.2
    return {
        c: math.log(yes if c.lower() == "yes" else 1 - yes if c.lower() == "no" else 1e-9) for c in request.candidates
    }


def spec(data: Path, **extra: object) -> ABSpec:
    base = {
        "name": "t",
        "stage": "check_worthiness",
        "dataset": {"path": str(data)},
        "backends": {"default": {"kind": "fake"}},
        "variants": [
            {"name": "long", "template": "checkworthiness_long@1"},
            {"name": "short", "template": "checkworthiness_short@1"},
        ],
        "bootstrap_resamples": 200,
    }
    base.update(extra)
    return ABSpec.model_validate(base)


def test_every_prediction_is_stored_and_a_rerun_redoes_nothing(tmp_path: Path) -> None:
    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    fake = FakeBackend(score_fn=smart_or_dumb)
    first = run_ab(spec(data), store, backends={"default": fake})
    assert first.predicted == {"long": 40, "short": 40} and not first.resumed
    calls = fake.stats.calls
    second = run_ab(spec(data), store, backends={"default": fake})
    assert (
        second.resumed and second.predicted == {"long": 0, "short": 0} and second.skipped == {"long": 40, "short": 40}
    )
    assert fake.stats.calls == calls
    rows = list(store.predictions("t", "long"))
    assert len(rows) == 40 and all(r.prompt_ref.startswith("checkworthiness_long@1#") for r in rows)


def test_a_crash_midway_resumes_without_redoing_finished_items(tmp_path: Path) -> None:
    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    budget = {"left": 25}

    def flaky(request: ScoreRequest) -> dict[str, float]:
        if budget["left"] == 0:
            raise RuntimeError("power cut")
        budget["left"] -= 1
        return smart_or_dumb(request)

    with pytest.raises(RuntimeError, match="power cut"):
        run_ab(spec(data), store, backends={"default": FakeBackend(score_fn=flaky)})
    before = {(r.variant, r.item_id): r.created for r in store.predictions("t")}
    assert len(before) == 25
    fresh = FakeBackend(score_fn=smart_or_dumb)
    summary = run_ab(spec(data), store, backends={"default": fresh})
    assert summary.predicted == {"long": 15, "short": 40}
    assert fresh.stats.calls == 55  # only the unfinished items reached the model
    after = {(r.variant, r.item_id): r.created for r in store.predictions("t")}
    assert len(after) == 80
    assert all(after[key] == created for key, created in before.items())


def test_identical_prompts_are_served_from_the_call_cache(tmp_path: Path) -> None:
    from claimflow.evals.cache import CachingBackend

    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    inner = FakeBackend(score_fn=smart_or_dumb)
    cached = CachingBackend(inner, store)
    variants = [
        {"name": "long", "template": "checkworthiness_long@1"},
        {"name": "long-again", "template": "checkworthiness_long@1"},
    ]
    run_ab(spec(data, variants=variants), store, backends={"default": cached})
    assert inner.stats.calls == 40 and cached.hits == 40
    a = {r.item_id: r.probabilities for r in store.predictions("t", "long")}
    b = {r.item_id: r.probabilities for r in store.predictions("t", "long-again")}
    assert a == b


def test_a_changed_spec_under_the_same_name_is_refused(tmp_path: Path) -> None:
    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    run_ab(spec(data), store, backends={"default": FakeBackend()})
    with pytest.raises(ConfigError, match="different spec"):
        run_ab(spec(data, bootstrap_resamples=300), store, backends={"default": FakeBackend()})


def test_a_spec_stored_in_an_older_layout_still_resumes(tmp_path: Path) -> None:
    """Before backends had one config class per kind, a spec stored every kind's keys on every backend."""
    import json
    import sqlite3

    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    the_spec = spec(data)
    run_ab(the_spec, store, backends={"default": FakeBackend()})
    old = the_spec.model_dump(mode="json")
    for backend in old.get("backends", {}).values():
        backend.update({"base_url": None, "api": "chat", "api_key_env": "OPENAI_API_KEY", "timeout_s": 60.0,
                        "max_retries": 2, "top_logprobs": 20, "device": "cpu", "dtype": "float32"})  # fmt: skip
    assert old.get("backends"), "the spec under test has a backend"
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        db.execute("UPDATE runs SET spec = ? WHERE run_id = 't'", (json.dumps(old, sort_keys=True),))
    resumed = RunStore(tmp_path / "runs.sqlite")
    summary = run_ab(spec(data), resumed, backends={"default": FakeBackend()})
    assert sum(summary.predicted.values()) == 0  # everything was already there: a resume, not a refusal


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": [{"name": "a", "template": "x"}, {"name": "a", "template": "y"}]}, "unique"),
        ({"variants": [{"name": "a", "template": "x", "backend": "gpu"}]}, "no backend named"),
        ({"variants": [{"name": "a", "template": "x", "demos": {"k": 2}}]}, "demo_pool"),
        ({"baseline": "nope"}, "baseline"),
        ({"variants": [{"name": "a"}]}, "exactly one of template, soft_prompt or encoder"),
        (
            {"variants": [{"name": "a", "template": "x", "soft_prompt": "/p"}]},
            "exactly one of template, soft_prompt or encoder",
        ),
    ],
)
def test_invalid_specs(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(tmp_path / "d.jsonl", **change)


def test_report_finds_the_better_variant_and_renders(tmp_path: Path) -> None:
    data, store = _claims(tmp_path / "d.jsonl", 60), RunStore(tmp_path / "runs.sqlite")
    run_ab(spec(data, baseline="short"), store, backends={"default": FakeBackend(score_fn=smart_or_dumb)})
    report = build_report(store, ["t"])
    by_name = {v.name: v for v in report.variants}
    assert by_name["long"].metric == pytest.approx(1.0) and by_name["short"].metric == 0.0
    (comparison,) = report.comparisons
    assert comparison.variant == "long" and comparison.difference == pytest.approx(1.0)
    assert comparison.p_mcnemar < 0.001 and comparison.reject
    markdown = to_markdown(report)
    assert "| long |" in markdown and "Disagreements (20 items" in markdown
    page = to_html(report)
    assert page.startswith("<!doctype html>") and "id='metrics'" in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_stance_items_come_one_per_labelled_sentence(tmp_path: Path) -> None:
    path = tmp_path / "stance.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "c1",
                "claim": "CO2 warms the planet.",
                "evidence": ["It does.", "It does not.", "Unrelated."],
                "evidence_labels": ["SUPPORT", "REFUTE", "NEUTRAL"],
                "label": None,
                "split": "dev",
                "source": "test",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    from claimflow.evals.ab import DatasetSpec

    items = items_for("evidence_stance", DatasetSpec(path=path), None)
    assert [(i.id, i.gold) for i in items] == [("c1#0", "SUPPORT"), ("c1#1", "REFUTE"), ("c1#2", "NEUTRAL")]
    assert items[1].inputs == {"claim": "CO2 warms the planet.", "sentence": "It does not."}

"""``eval run`` in batches: the rows equal the item-at-a-time run's, and a crash loses at most a batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_evals_ab import _claims, smart_or_dumb, spec

from claimflow.errors import ConfigError
from claimflow.evals.ab import run_ab
from claimflow.evals.store import RunStore
from claimflow.llm.base import ScoreRequest
from claimflow.llm.fake import FakeBackend


def rows(store: RunStore) -> dict[tuple[str, str], tuple[str | None, dict[str, float]]]:
    return {(r.variant, r.item_id): (r.label, r.probabilities) for r in store.predictions("t")}


def test_batched_rows_equal_the_item_at_a_time_rows(tmp_path: Path) -> None:
    data = _claims(tmp_path / "d.jsonl")
    one, many = RunStore(tmp_path / "one.sqlite"), RunStore(tmp_path / "many.sqlite")
    run_ab(spec(data), one, backends={"default": FakeBackend(score_fn=smart_or_dumb)})
    fake = FakeBackend(score_fn=smart_or_dumb)
    summary = run_ab(spec(data), many, backends={"default": fake}, batch_size=16)
    assert summary.predicted == {"long": 40, "short": 40}
    assert rows(many) == rows(one)
    assert max(len(batch) for batch in fake.score_batches) > 1  # the prompts went to the backend together


def test_a_crash_mid_batch_loses_that_batch_only_and_the_rerun_completes(tmp_path: Path) -> None:
    data, store = _claims(tmp_path / "d.jsonl"), RunStore(tmp_path / "runs.sqlite")
    budget = {"left": 25}

    def flaky(request: ScoreRequest) -> dict[str, float]:
        if budget["left"] == 0:
            raise RuntimeError("power cut")
        budget["left"] -= 1
        return smart_or_dumb(request)

    with pytest.raises(RuntimeError, match="power cut"):
        run_ab(spec(data), store, backends={"default": FakeBackend(score_fn=flaky)}, batch_size=8)
    assert len(rows(store)) == 24  # three whole batches of 8; the fourth was cut
    summary = run_ab(spec(data), store, backends={"default": FakeBackend(score_fn=smart_or_dumb)}, batch_size=8)
    assert summary.predicted == {"long": 16, "short": 40} and len(rows(store)) == 80


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        run_ab(spec(_claims(tmp_path / "d.jsonl")), RunStore(tmp_path / "r.sqlite"), batch_size=0)

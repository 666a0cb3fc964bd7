"""``batch --engine ray`` on a real local Ray instance (``ray.init(num_cpus=2)``), fake backends:
the lines equal the local engine's, and a rerun skips the finished ids."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_batch_engines import FakeVerifier, comparable, write_claims

from claimflow.batch import load_items, run_batch
from claimflow.batch_ray import RayOptions, run_batch_ray

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'claimflow[ray]'")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module (its start-up is the slow part on 2 cores)."""
    import cloudpickle
    import tests.conftest
    import tests.unit.test_batch_engines

    # the actors unpickle the test's factory by value: they need not import the tests package
    for module in (tests.conftest, tests.unit.test_batch_engines, sys.modules[__name__]):
        cloudpickle.register_pickle_by_value(module)
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def claims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_claims(tmp_path_factory.mktemp("claims") / "claims.jsonl", 210)


@pytest.fixture(scope="module")
def local_lines(claims: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    with FakeVerifier()() as verifier:
        run_batch(verifier, load_items(str(claims)), out, chunk_size=1)
    return comparable(out)


def test_ray_engine_writes_the_local_engines_lines_and_resumes(
    local_ray: None, claims: Path, local_lines: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    items = load_items(str(claims))
    with FakeVerifier()() as verifier:  # an earlier, interrupted run left the first 40 lines
        run_batch(verifier, items[:40], out)
    options = RayOptions(actors=2, cpus_per_actor=1)  # every CPU held by an actor
    summary = run_batch_ray(FakeVerifier(), claims, items, out, options=options, chunk_size=16)
    assert (summary.total, summary.skipped, summary.written, summary.errors) == (210, 40, 170, 4)
    assert comparable(out) == local_lines
    again = run_batch_ray(FakeVerifier(), claims, items, out, options=options)
    assert (again.skipped, again.written) == (210, 0)
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        f"c{i}" for i in range(210)
    ]


CW_ENCODER = Path(__file__).resolve().parents[2] / "src" / "claimflow" / "artifacts" / "checkworthiness-encoder"


def _rows(store: Any, run_id: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (r.variant, r.item_id): (
            r.gold,
            r.label,
            {k: round(v, 5) for k, v in r.probabilities.items()},
            r.parse_error,
            r.demo_ids,
            r.prompt_ref,
        )
        for r in store.predictions(run_id)
    }


def test_ray_eval_run_stores_the_local_engines_rows_and_resumes(local_ray: None, tmp_path: Path) -> None:
    import dataclasses

    from tests.unit.test_evals_ab import _claims

    from claimflow._version import __version__
    from claimflow.batch_ray import run_ab_ray
    from claimflow.evals.ab import ABSpec, run_ab
    from claimflow.evals.store import RunStore

    spec = ABSpec.model_validate(
        {
            "name": "ray-ab",
            "stage": "check_worthiness",
            "dataset": {"path": str(_claims(tmp_path / "claims.jsonl", 40))},
            "backends": {"default": {"kind": "fake"}},
            "variants": [  # a prompted variant on the fake backend, and the shipped MiniLM classifier
                {"name": "long", "template": "checkworthiness_long@1"},
                {"name": "encoder", "encoder": str(CW_ENCODER)},
            ],
        }
    )
    local = RunStore(tmp_path / "local.sqlite")
    run_ab(spec, local, batch_size=8)
    expected = _rows(local, "ray-ab")
    assert len(expected) == 80

    store = RunStore(tmp_path / "ray.sqlite")  # an earlier, interrupted run left 10 rows of "long"
    store.start_run("ray-ab", spec.model_dump(mode="json"), __version__, None)
    for row in list(local.predictions("ray-ab", "long"))[:10]:
        store.add("ray-ab", dataclasses.replace(row))
    options = RayOptions(actors=2, cpus_per_actor=1)
    summary = run_ab_ray(spec, store, options=options, batch_size=8)
    assert summary.resumed and summary.skipped == {"long": 10, "encoder": 0}
    assert summary.predicted == {"long": 30, "encoder": 40}
    assert _rows(store, "ray-ab") == expected
    again = run_ab_ray(spec, store, options=options)
    assert again.predicted == {"long": 0, "encoder": 0} and again.skipped == {"long": 40, "encoder": 40}

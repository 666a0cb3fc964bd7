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

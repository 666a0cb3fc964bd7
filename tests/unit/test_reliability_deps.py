"""The declared dependency floor covers what the code calls: an install at the floor must work."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

import claimflow.evals.stats as stats

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _floor(name: str) -> Version:
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    (requirement,) = [Requirement(d) for d in dependencies if Requirement(d).name == name]
    floors = [Version(s.version) for s in requirement.specifier if s.operator in {">=", "==", "~="}]
    assert floors, f"{name} has no lower bound in pyproject.toml"
    return max(floors)


def test_scipy_floor_has_the_rng_argument_the_statistics_pass() -> None:
    """``scipy.stats.bootstrap`` / ``permutation_test`` take ``rng=`` from SciPy 1.15 on
    (``random_state=`` before); evals/stats.py passes ``rng=``."""
    assert re.search(r"\brng=", inspect.getsource(stats))
    assert _floor("scipy") >= Version("1.15")

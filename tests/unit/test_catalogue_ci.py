"""Honest CI: a real-data test that skips is loud, and a failure under CLAIMFLOW_REQUIRE_DATA=1;
``.ci/run`` fails when it cannot provide the browser the report tests need."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

DATA_TEST = """
import pytest

pytestmark = pytest.mark.data


def test_needs_the_data():
    pytest.skip("real datasets not found: set CLAIMFLOW_DATA")


def test_unmarked_skip_is_left_alone():
    pass
"""


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport, pytest_terminal_summary  # noqa: F401\n",
        encoding="utf-8",
    )
    (tmp_path / "test_data.py").write_text(DATA_TEST, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k != "CLAIMFLOW_REQUIRE_DATA"} | env
    environ["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    return subprocess.run(
        [*command, str(tmp_path)], capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=300, check=False
    )


def test_a_skipped_data_test_is_reported_loudly(tmp_path: Path) -> None:
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 real-data tests SKIPPED" in done.stdout and "real datasets not found" in done.stdout


def test_require_data_turns_the_skip_into_a_failure(tmp_path: Path) -> None:
    done = _pytest(tmp_path, CLAIMFLOW_REQUIRE_DATA="1")
    assert done.returncode == 1, done.stdout
    assert "CLAIMFLOW_REQUIRE_DATA=1, but this real-data test was skipped" in done.stdout
    assert "1 failed, 1 passed" in done.stdout


def test_ci_run_requires_the_browser_and_the_data_it_finds() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=False).returncode == 0
    assert "CLAIMFLOW_REQUIRE_DATA" in script and "exit 1" in script
    assert "warning: could not install chromium" not in script  # a missing browser is no longer only a warning

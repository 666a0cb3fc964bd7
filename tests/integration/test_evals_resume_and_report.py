"""A real A/B run killed with SIGKILL midway resumes without repeating finished items; the HTML
report renders in headless Chromium (Debian's chromium, installed by .ci/run)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.sigkill import rerun, run_until_killed

pytestmark = pytest.mark.slow

SENTENCES = [
    "Unemployment fell to {n} percent last year.",
    "Thank you all for coming tonight, it means a lot, friend {n}.",
    "We spent {n} billion dollars on the new program.",
    "I think my opponent is a good person, number {n}.",
]


def _write_inputs(tmp: Path, n: int = 24) -> Path:
    data = tmp / "claims.jsonl"
    rows = [
        {
            "id": f"s{i}",
            "claim": SENTENCES[i % 4].format(n=i),
            "evidence": [],
            "label": "Yes" if i % 2 == 0 else "No",
            "split": "dev",
            "source": "test",
        }
        for i in range(n)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = tmp / "spec.yaml"
    spec.write_text(
        f"name: killme\nstage: check_worthiness\ndataset: {{path: {data}}}\nbootstrap_resamples: 200\n"
        "variants:\n  - {name: long, template: checkworthiness_long@1}\n"
        "  - {name: short, template: checkworthiness_short@1}\n",
        encoding="utf-8",
    )
    return spec


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _rows(db: Path) -> dict[tuple[str, str], float]:
    with sqlite3.connect(db) as conn:
        return {(v, i): c for v, i, c in conn.execute("SELECT variant, item_id, created FROM predictions")}


def test_sigkill_midway_then_rerun_finishes_without_repeats(tmp_path: Path) -> None:
    spec, db = _write_inputs(tmp_path), tmp_path / "runs.sqlite"
    command = [sys.executable, "-m", "claimflow.cli", "eval", "run", str(spec), "--store", str(db)]
    run_until_killed(command, lambda: _count(db) >= 10, what="the run", timeout_s=240, stdout=subprocess.DEVNULL)
    before = _rows(db)
    assert 10 <= len(before) < 48
    assert f"already done {len(before)}" in rerun(command).stderr
    after = _rows(db)
    assert len(after) == 48  # 2 variants x 24 items, each exactly once (primary key)
    assert all(after[key] == created for key, created in before.items())  # finished rows untouched


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (CI installs it)")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from tests.browser import chromium
    from tests.unit.test_evals_ab import _claims, smart_or_dumb, spec

    from claimflow.evals.ab import run_ab
    from claimflow.evals.report import build_report, to_html
    from claimflow.evals.store import RunStore
    from claimflow.llm.fake import FakeBackend

    store = RunStore(tmp_path / "r.sqlite")
    run_ab(spec(_claims(tmp_path / "d.jsonl", 30)), store, backends={"default": FakeBackend(score_fn=smart_or_dumb)})
    page = tmp_path / "report.html"
    page.write_text(to_html(build_report(store, ["t"])), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-1000:]
    assert '<table id="metrics">' in dom.stdout and '<table id="comparisons">' in dom.stdout
    assert dom.stdout.count("<img") == 2
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000

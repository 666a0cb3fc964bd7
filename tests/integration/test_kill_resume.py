"""SIGKILL at many seeded points of ``batch``, ``eval run`` and ``finetune distill``, each kill resumed
by the next run: the final output equals an uninterrupted run's, with no item lost or written twice.

The commands run on a scripted fake backend (``tests.integration.sigkill``'s fork server: claimflow is
imported once, each run is a forked child of the real CLI), so a kill point costs milliseconds.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
KILLS = 20
"""Killed runs per command, at seeded points: half at the k-th model call, half after a delay."""

PIPELINE = (
    "backends: {default: {kind: killing_fake}}\n"
    "check_worthiness: {predictor: prompt}\nevidence_stance: {predictor: prompt}\nveracity: {predictor: prompt}\n"
)


def _claim(i: int) -> dict[str, Any]:
    return {
        "claim": f"Masks reduce droplet spread by {i} percent in study {i}.",
        "evidence": [f"Study {i} found a {i} percent cut.", f"Cloth masks helped less in trial {i}."],
    }


def batch_scenario(folder: Path) -> list[str]:
    source, config = folder / "in.jsonl", folder / "pipeline.yaml"
    source.write_text("".join(json.dumps({"id": f"c{i}", **_claim(i)}) + "\n" for i in range(40)), encoding="utf-8")
    config.write_text(PIPELINE, encoding="utf-8")
    return ["batch", str(source), "-o", str(folder / "out.jsonl"), "-c", str(config), "--force"]


def eval_scenario(folder: Path) -> list[str]:
    data = folder / "d.jsonl"
    rows = [
        {"id": f"s{i}", "label": "Yes" if i % 2 else "No", "split": "dev", "source": "t", **_claim(i)}
        for i in range(30)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {
        "name": "kill",
        "stage": "check_worthiness",
        "dataset": {"path": str(data)},
        "backends": {"default": {"kind": "killing_fake"}},
        "variants": [
            {"name": "long", "template": "checkworthiness_long@1"},
            {"name": "short", "template": "checkworthiness_short@1"},
        ],
        "bootstrap_resamples": 100,
    }
    (folder / "spec.yaml").write_text(json.dumps(spec), encoding="utf-8")
    return ["eval", "run", str(folder / "spec.yaml"), "--store", str(folder / "runs.sqlite")]


def distill_scenario(folder: Path) -> list[str]:
    data = folder / "data" / "covidfact"
    data.mkdir(parents=True)
    claims = [
        {"label": "SUPPORTED" if i % 2 else "REFUTED", "source": "https://example.org", **_claim(i)} for i in range(20)
    ]
    (data / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    (folder / "pipeline.yaml").write_text(PIPELINE, encoding="utf-8")
    return [
        "finetune", "distill", "--dataset", "covidfact", "--split", "train", "--output", str(folder / "out.jsonl"),
        "--config", str(folder / "pipeline.yaml"), "--data-dir", str(folder / "data"),
    ]  # fmt: skip


def _drive(function: str, workdir: Path, seed: int) -> list[Path]:
    """The cycle folders of a fork-server run (each a fresh output killed and resumed to its end)."""
    command = [sys.executable, "-m", "tests.integration.sigkill", "tests.integration.test_kill_resume", function]
    command += [str(workdir), str(KILLS), str(seed)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["clean"] == "done" and report["killed"] >= KILLS, report
    for cycle in report["cycles"]:
        assert cycle["outcomes"][-1] == "done", report  # each cycle ends in a run that finished by itself
    return [workdir / cycle["folder"] for cycle in report["cycles"]]


_VOLATILE = {"seconds", "total_seconds", "node_seconds", "created", "timings", "run_id", "started", "finished"}


def _stable(value: Any) -> Any:
    """``value`` without wall-clock fields (timings, timestamps)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _by_id(path: Path) -> dict[str, Any]:
    lines = _lines(path)
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "an item was written twice"
    return {line["id"]: _stable(line) for line in lines}


@pytest.mark.parametrize("seed", [0])
def test_batch_survives_sigkill_at_every_point(tmp_path: Path, seed: int) -> None:
    folders = _drive("batch_scenario", tmp_path, seed)
    clean = _by_id(tmp_path / "clean" / "out.jsonl")
    assert len(clean) == 40
    for folder in folders:
        assert _by_id(folder / "out.jsonl") == clean, folder.name


def _rows(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        query = "SELECT variant, item_id, gold, label, probabilities, prompt_ref FROM predictions ORDER BY 1, 2"
        return list(db.execute(query))


def test_eval_run_survives_sigkill_at_every_point(tmp_path: Path) -> None:
    folders = _drive("eval_scenario", tmp_path, 1)
    clean = _rows(tmp_path / "clean" / "runs.sqlite")
    assert len(clean) == 60
    for folder in folders:  # the primary key keeps each (variant, item) once
        assert _rows(folder / "runs.sqlite") == clean, folder.name


def test_distill_survives_sigkill_at_every_point(tmp_path: Path) -> None:
    folders = _drive("distill_scenario", tmp_path, 2)
    clean = _by_id(tmp_path / "clean" / "out.jsonl")
    assert len(clean) == 20
    for folder in folders:
        assert _by_id(folder / "out.jsonl") == clean, folder.name

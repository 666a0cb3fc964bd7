"""Distillation on the real SmolLM2 survives SIGKILL: the rerun keeps the finished lines, skips
their ids, and writes each remaining claim exactly once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.integration.sigkill import rerun, run_until_killed

pytestmark = pytest.mark.slow


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def test_sigkill_during_distillation_resumes_without_redoing_work(tmp_path: Path) -> None:
    data = tmp_path / "data" / "covidfact"
    data.mkdir(parents=True)
    claims = [
        {
            "claim": f"Masks reduce droplet spread by {10 * n} percent in a lab study",
            "label": "SUPPORTED" if n % 2 else "REFUTED",
            "evidence": [
                f"A lab study found masks cut droplet spread by {10 * n} percent.",
                "Cloth masks helped less.",
            ],
            "source": "https://example.org",
        }
        for n in range(1, 7)
    ]
    (data / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    config = tmp_path / "pipeline.yaml"
    config.write_text("justify: {max_tokens: 24}\n", encoding="utf-8")
    out = tmp_path / "distilled.jsonl"
    command = [
        sys.executable, "-m", "claimflow.cli", "finetune", "distill", "--dataset", "covidfact", "--split", "train",
        "--output", str(out), "--config", str(config), "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    run_until_killed(command, lambda: len(_lines(out)) >= 2, what="distillation")
    finished = [line["id"] for line in _lines(out)]
    assert 2 <= len(finished) < 6

    counts = json.loads(rerun(command).stdout.strip().splitlines()[-1])
    assert counts["skipped"] == len(finished) and counts["written"] == 6 - len(finished)
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == sorted(f"covidfact-train-{i}" for i in range(6))
    assert all(line["support_justification"] or line["refute_justification"] for line in lines)
    assert all("label" not in line for line in lines)

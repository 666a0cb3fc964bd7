"""Reasoning datasets for the LoRA compositions (issue #14): CorrectClaim from the data, teacher rows
resumable, pinned to one teacher, and never shown a label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimflow.errors import InputError
from claimflow.evals.datasets import load_dataset
from claimflow.finetune.reasoning import correct_claim_rows, teacher_rows
from claimflow.llm.fake import FakeBackend

ROWS = [
    {"claim": "Masks reduce droplet spread", "label": "SUPPORTED", "evidence": ["Masks cut spread."], "source": "s"},
    {"claim": "Masks increase droplet spread", "label": "REFUTED", "evidence": ["Masks cut spread."], "source": "s"},
    {"claim": "Zinc cures covid", "label": "REFUTED", "evidence": ["No effect of zinc was seen."], "source": "s"},
]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "covidfact"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return tmp_path


def test_correct_claim_pairs_each_claim_with_the_true_claim_of_its_evidence(data_dir: Path) -> None:
    rows = correct_claim_rows("train", data_dir)
    assert [(r["claim"], r["target"]) for r in rows] == [
        ("Masks reduce droplet spread", "Masks reduce droplet spread"),
        ("Masks increase droplet spread", "Masks reduce droplet spread"),
    ]  # the zinc claim has no true claim for its evidence: no target, left out
    assert all("label" not in r for r in rows)


def test_teacher_rows_resume_and_never_show_a_label(data_dir: Path, tmp_path: Path) -> None:
    examples = load_dataset("covidfact", "train", data_dir)
    out = tmp_path / "diff.jsonl"
    teacher = FakeBackend("teacher", responses=["They differ in one word.", "Same."])
    assert teacher_rows("difference_cot", examples[:2], teacher, out=out) == 2
    prompts = " ".join(m.content for r in teacher.generate_requests for m in r.messages)
    assert "SUPPORTED" not in prompts and "REFUTED" not in prompts
    again = FakeBackend("teacher", responses=["Zinc differs."])
    assert teacher_rows("difference_cot", examples, again, out=out) == 1  # the first two are kept, not redone
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["target"] for line in lines] == ["They differ in one word.", "Same.", "Zinc differs."]
    assert len({line["fingerprint"] for line in lines}) == 1

    with pytest.raises(InputError, match="another teacher or template"):
        teacher_rows("difference_cot", examples, FakeBackend("another-teacher"), out=out)
    with pytest.raises(InputError, match="from the data"):
        teacher_rows("correct_claim", examples, teacher, out=tmp_path / "x.jsonl")


def test_cli_writes_correct_claim_rows_and_refuses_an_unknown_task(data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from claimflow.cli.main import app

    out = tmp_path / "cc.jsonl"
    args = ["finetune", "reasoning-data", "--task", "correct_claim", "-o", str(out), "--data-dir", str(data_dir)]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    bad = CliRunner().invoke(app, ["finetune", "reasoning-data", "--task", "summary", "-o", str(out)])
    assert bad.exit_code != 0 and "choose from" in bad.output

"""Distillation on the fake backend: no gold label reaches a prompt, resume, content cache, bad items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import keyword_scorer, prompt_config

from claimflow import Verifier
from claimflow.errors import InputError
from claimflow.evals.datasets import load_dataset
from claimflow.finetune.distill import DistillCache, distill_config, run_distill, unlabelled_items
from claimflow.llm.fake import FakeBackend

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def _verifier(fake: FakeBackend) -> Verifier:
    """The distillation stages with the prompted stance, so the fake backend answers them."""
    return Verifier(distill_config(prompt_config({})), backends={"default": fake})


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_gold_labels_never_reach_a_prompt(tmp_path: Path) -> None:
    examples = load_dataset("covidfact", "train", FIXTURE_DATA)
    items = unlabelled_items(examples)
    assert all(set(item) == {"id", "claim", "evidence"} for item in items)
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "A justification.")
    counts = run_distill(_verifier(fake), items, tmp_path / "out.jsonl")
    assert counts["written"] == len(examples) and counts["errors"] == 0
    prompts = [m.content for r in fake.score_requests for m in r.messages]
    prompts += [m.content for r in fake.generate_requests for m in r.messages]
    assert prompts, "the stages called the model"
    for text in prompts:
        for gold in ("SUPPORTED", "REFUTED"):
            assert gold not in text
    for line in _lines(tmp_path / "out.jsonl"):
        assert "label" not in line
        assert line["support_justification"] and line["refute_justification"]
    provenance = json.loads((tmp_path / "out.jsonl.provenance.json").read_text())
    assert provenance["gold_labels_seen"] is False


def test_items_carrying_labels_are_refused(tmp_path: Path) -> None:
    item = {"id": "1", "claim": "c", "evidence": ["e"], "label": "SUPPORTED"}
    with pytest.raises(InputError, match="no labels"):
        run_distill(_verifier(FakeBackend()), [item], tmp_path / "out.jsonl")


def test_a_rerun_resumes_and_the_cache_serves_other_runs(tmp_path: Path) -> None:
    items = unlabelled_items(load_dataset("covidfact", "train", FIXTURE_DATA))
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "A justification.")
    out = tmp_path / "out.jsonl"
    cache = DistillCache(tmp_path / "cache.sqlite")
    run_distill(_verifier(fake), items[:1], out, cache=cache)
    with out.open("a", encoding="utf-8") as handle:  # a crash in the middle of writing a line
        handle.write('{"id": "covidfact-train-1", "claim": "cut sh')
    calls_before = len(fake.generate_requests)
    counts = run_distill(_verifier(fake), items, out, cache=cache)
    assert counts == {"total": 2, "skipped": 1, "cached": 0, "written": 1, "errors": 0}
    assert len(fake.generate_requests) > calls_before
    assert [line["id"] for line in _lines(out)] == ["covidfact-train-0", "covidfact-train-1"]

    other = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "A justification.")
    counts = run_distill(_verifier(other), items, tmp_path / "again.jsonl", cache=cache)
    assert counts["cached"] == 2 and not other.generate_requests and not other.score_requests
    assert _lines(tmp_path / "again.jsonl")[1]["support_justification"] == "A justification."


def test_an_item_without_evidence_gets_an_error_line_and_the_run_goes_on(tmp_path: Path) -> None:
    items = [{"id": "a", "claim": "No evidence here.", "evidence": []}, {"id": "b", "claim": "c", "evidence": ["e"]}]
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "J.")
    counts = run_distill(_verifier(fake), items, tmp_path / "out.jsonl")
    assert counts["errors"] == 1 and counts["written"] == 2
    first, second = _lines(tmp_path / "out.jsonl")
    assert "error" in first and "support_justification" in second


def test_an_output_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    """A file where the output's folder should be, or a folder as the output, names the path (issue #15)."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    items = [{"id": "1", "claim": "Masks work.", "evidence": ["A trial found masks cut spread."]}]
    with pytest.raises(InputError, match="cannot create the folder"):
        run_distill(_verifier(FakeBackend()), items, blocker / "out.jsonl")
    with pytest.raises(InputError, match=str(tmp_path)):
        run_distill(_verifier(FakeBackend()), items, tmp_path)
    with pytest.raises(InputError, match="cannot create the folder"):
        DistillCache(blocker / "cache.sqlite")
    assert blocker.read_text(encoding="utf-8") == "a file, not a folder"  # nothing lost


def test_the_cli_reads_the_split_names_the_classifier_trainer_reads(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from claimflow.cli.main import app
    from claimflow.finetune.ranked_evidence import claims_of

    train_part, dev_part = (claims_of("climate_fever", s, FIXTURE_DATA) for s in ("train_part", "dev_part"))
    all_ids = {e.id for e in load_dataset("climate_fever", "dev", FIXTURE_DATA)}
    assert train_part and dev_part and {e.id for e in train_part} | {e.id for e in dev_part} == all_ids
    with pytest.raises(InputError, match="exists only for climate_fever"):
        claims_of("covidfact", "dev_part", FIXTURE_DATA)
    args = ["finetune", "distill", "--dataset", "covidfact", "--split", "dev_part", "--data-dir", str(FIXTURE_DATA)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code != 0 and "exists only for climate_fever" in result.output
    assert not (tmp_path / "out.jsonl").exists()

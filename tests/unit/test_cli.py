from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import FIXTURES
from typer.testing import CliRunner

from claimflow.cli.main import app

FAKE = str(FIXTURES / "fake.yaml")
runner = CliRunner()


def test_verify_json_output_has_label_and_probabilities_per_stage(tmp_path: Path) -> None:
    evidence = tmp_path / "ev.txt"
    evidence.write_text("First sentence.\nSecond sentence.\n", encoding="utf-8")
    result = runner.invoke(app, ["verify", "A claim.", "--evidence", str(evidence), "--config", FAKE, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for stage in (data["check_worthiness"], data["veracity"], *data["evidence_stances"]):
        assert {"label", "probabilities"} <= set(stage)
    assert len(data["evidence_stances"]) == 2
    assert data["provenance"]["prompts"]["veracity"].startswith("veracity_justifications@1#")


def test_verify_reads_evidence_from_stdin_as_json() -> None:
    result = runner.invoke(
        app, ["verify", "A claim.", "-e", "-", "-c", FAKE, "--json"], input='["One.", "Two.", "Three."]'
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["evidence"]) == 3


def test_readable_output_and_the_bundled_example() -> None:
    result = runner.invoke(app, ["verify", "--example", "-c", FAKE, "--force"])
    assert result.exit_code == 0, result.output
    assert "Veracity:" in result.stdout and "Timings:" in result.stdout


def test_a_non_utf8_evidence_file_is_a_clear_error(tmp_path: Path) -> None:
    evidence = tmp_path / "latin1.txt"
    evidence.write_bytes("Caf\xe9 au lait cures colds.\n".encode("latin-1"))
    result = runner.invoke(app, ["verify", "A claim.", "-e", str(evidence), "-c", FAKE])
    assert result.exit_code == 2
    assert "InputEncodingError" in result.stderr and "--encoding" in result.stderr
    ok = runner.invoke(app, ["verify", "A claim.", "-e", str(evidence), "-c", FAKE, "--encoding", "latin-1", "--json"])
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["evidence"] == ["Café au lait cures colds."]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["verify", "   ", "-c", FAKE], "EmptyClaimError"),
        (["verify", "x", "-c", "/no/such/config.yaml"], "does not exist"),
        (["verify", "x", "-e", "/no/such/file.txt", "-c", FAKE], "cannot read"),
        (["batch", "/dev/null", "-o", "/tmp/x.jsonl", "--stages", "nope", "-c", FAKE], "unknown stage"),
    ],
)
def test_errors_exit_2_with_one_clear_line(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["finetune", "multitask", "-c", "/no/such/config.yaml"], "error: ConfigError: cannot read training config"),
        (["eval", "run", "/no/such/spec.yaml", "--store", "/no/such/runs.sqlite"], "error: ConfigError: cannot read"),
        (["prompts", "show", "no_such_template"], "error: TemplateNotFoundError: unknown template"),
        (["trace", "last", "--db", "/no/such/trace.sqlite"], "error: InputError: no runs database"),
        (["config", "-c", "/no/[bold]such[/bold].yaml"], "/no/[bold]such[/bold].yaml does not exist"),  # no markup
    ],
)
def test_every_command_group_reports_errors_the_same_way(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and expected in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_an_unknown_model_name_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "backends:\n  default: {kind: llamacpp, model: gpt-17}\ncheck_worthiness: {predictor: prompt}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["verify", "A claim.", "-c", str(config)])
    assert result.exit_code == 2
    assert "ModelNotFoundError" in result.stderr and "smollm2-135m-instruct" in result.stderr


def test_graph_prints_mermaid_without_loading_models() -> None:
    result = runner.invoke(app, ["graph", "--format", "mermaid"])
    assert result.exit_code == 0
    assert result.stdout.strip() == (FIXTURES / "graph_default.mmd").read_text(encoding="utf-8").strip()


def test_config_command_prints_a_loadable_default(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config"])
    path = tmp_path / "c.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    from claimflow import PipelineConfig

    assert PipelineConfig.from_yaml(path) == PipelineConfig()


def _claims(path: Path, n: int) -> None:
    lines = [
        json.dumps({"id": f"c{i}", "claim": f"Claim number {i}.", "evidence": ["An evidence sentence."], "topic": "t"})
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_batch_writes_one_line_per_id_and_passes_extra_fields(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _claims(source, 3)
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["c0", "c1", "c2"]
    assert all(r["topic"] == "t" and r["result"]["veracity"]["label"] for r in rows)


def test_batch_resumes_after_a_crash_without_redoing_finished_ids(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _claims(source, 4)
    assert runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE]).exit_code == 0
    lines = out.read_text().splitlines(keepends=True)
    # a crash: two lines finished, the third cut half-way through writing
    out.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2], encoding="utf-8")
    before = [json.loads(x) for x in lines[:2]]
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE])
    assert result.exit_code == 0, result.output
    assert "2 written, 2 already done" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["c0", "c1", "c2", "c3"]
    assert rows[:2] == before  # finished lines untouched


def test_batch_stage_subset_and_input_errors(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        '{"id": 1, "claim": "A claim.", "evidence": ["e"]}\n{"id": 2, "claim": "  ", "evidence": []}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE, "--stages", "check_worthiness"])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["result"]["stages_run"] == ["check_worthiness"] and first["result"]["veracity"] is None
    assert second["error"]["type"] == "EmptyClaimError"


def test_batch_rejects_malformed_input_naming_the_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "claim": "ok"}\nnot json\n', encoding="utf-8")
    result = runner.invoke(app, ["batch", str(source), "-o", str(tmp_path / "o.jsonl"), "-c", FAKE])
    assert result.exit_code == 2 and "in.jsonl:2" in result.stderr

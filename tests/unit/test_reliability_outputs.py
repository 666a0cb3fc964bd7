"""Output files: a bad output path is one clear error (no traceback), and resuming a JSONL output
never loses or rewrites a finished line."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FIXTURES, PROMPT_ONLY
from typer.testing import CliRunner

from claimflow.batch import done_ids, repair_tail, run_batch
from claimflow.cli.main import app
from claimflow.errors import InputError
from claimflow.llm.fake import FakeBackend
from claimflow.verifier import Verifier

FAKE = str(FIXTURES / "fake.yaml")
runner = CliRunner()


def _claims(path: Path, n: int) -> Path:
    lines = [json.dumps({"id": f"c{i}", "claim": f"Claim {i}.", "evidence": ["A sentence."]}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    message = " ".join(result.stderr.split())
    assert "error: InputError: " in message  # after the progress bar's line, where there is one
    assert "Traceback" not in result.output
    return message


# --- resume ----------------------------------------------------------------------------------


def test_a_middle_line_that_is_not_utf8_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = b'{"id": "a"}\n{"id": "\xff\xfe"}\n{"id": "c"}\n'
    out.write_bytes(data)
    repair_tail(out)
    with pytest.raises(InputError, match=r"out\.jsonl:2: not valid JSON"):
        done_ids(out)
    assert out.read_bytes() == data  # nothing rewritten


def test_a_complete_last_line_without_newline_is_kept_and_a_rerun_appends_after_it(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a", "result": 1}\n{"id": "b", "result": 2}')
    repair_tail(out)
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "c"}\n')
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["a", "b", "c"]


def test_a_last_line_cut_inside_a_utf8_character_is_dropped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a"}\n{"id": "b", "claim": "caf\xc3')
    repair_tail(out)
    assert out.read_bytes() == b'{"id": "a"}\n'


# --- output paths: the library ---------------------------------------------------------------


@pytest.fixture
def verifier(fake: FakeBackend) -> Verifier:
    return Verifier(PROMPT_ONLY, backends={"default": fake})


ITEMS = [("c0", {"id": "c0", "claim": "Masks work.", "evidence": ["A study."]})]


def test_batch_output_that_is_a_folder_is_an_input_error(tmp_path: Path, verifier: Verifier) -> None:
    with pytest.raises(InputError, match="is a folder"):
        run_batch(verifier, ITEMS, tmp_path)
    with pytest.raises(InputError, match="is a folder"):
        repair_tail(tmp_path)


def test_batch_output_under_a_file_is_an_input_error(tmp_path: Path, verifier: Verifier) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="cannot create the folder"):
        run_batch(verifier, ITEMS, blocker / "out.jsonl")
    assert blocker.read_text(encoding="utf-8") == "x"


def test_batch_output_in_a_missing_folder_creates_it(tmp_path: Path, verifier: Verifier) -> None:
    out = tmp_path / "new" / "deeper" / "out.jsonl"
    summary = run_batch(verifier, ITEMS, out)
    assert summary.written == 1 and done_ids(out) == {"c0"}


def test_a_full_disk_mid_batch_is_an_input_error_and_the_written_lines_stay(
    tmp_path: Path, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    import claimflow.batch as batch_module

    out = tmp_path / "out.jsonl"
    items = [(f"c{i}", {"id": f"c{i}", "claim": f"Claim {i}.", "evidence": ["A study."]}) for i in range(3)]
    calls = {"n": 0}
    real_fsync = batch_module.os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(batch_module.os, "fsync", fsync)
    with pytest.raises(InputError, match="No space left on device"):
        run_batch(verifier, items, out)
    monkeypatch.setattr(batch_module.os, "fsync", real_fsync)
    assert "c0" in done_ids(out)
    summary = run_batch(verifier, items, out)  # the rerun finishes the rest, once each
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(ids) == ["c0", "c1", "c2"] and summary.skipped >= 1


# --- output paths: the CLI -------------------------------------------------------------------


def test_cli_batch_output_that_is_a_folder(tmp_path: Path) -> None:
    source = _claims(tmp_path / "in.jsonl", 2)
    folder = tmp_path / "results"
    folder.mkdir()
    message = _one_line_error(runner.invoke(app, ["batch", str(source), "-o", str(folder), "-c", FAKE]))
    assert "is a folder" in message and str(folder) in message
    assert list(folder.iterdir()) == []


def test_cli_batch_output_under_a_file(tmp_path: Path) -> None:
    source = _claims(tmp_path / "in.jsonl", 2)
    message = _one_line_error(runner.invoke(app, ["batch", str(source), "-o", str(source / "out.jsonl"), "-c", FAKE]))
    assert "cannot create the folder" in message


def test_cli_batch_output_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    source = _claims(tmp_path / "in.jsonl", 2)
    out = tmp_path / "missing" / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE])
    assert result.exit_code == 0, result.output
    assert done_ids(out) == {"c0", "c1"}


def test_cli_batch_output_that_cannot_be_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unwritable output (tests may run as root, where permissions do not bite: the open fails)."""
    source = _claims(tmp_path / "in.jsonl", 1)
    out = tmp_path / "out.jsonl"
    real_open = Path.open

    def refuse(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self == out and mode != "r":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    message = _one_line_error(runner.invoke(app, ["batch", str(source), "-o", str(out), "-c", FAKE]))
    assert f"cannot write {out}: Permission denied" in message


def test_cli_graph_output_that_is_a_folder(tmp_path: Path) -> None:
    message = _one_line_error(runner.invoke(app, ["graph", "--format", "dot", "-o", str(tmp_path)]))
    assert "is a folder" in message


def test_cli_graph_output_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    message = _one_line_error(runner.invoke(app, ["graph", "-o", str(blocker / "g.mmd")]))
    assert "cannot create the folder" in message


def test_cli_graph_output_that_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "g.mmd"

    def refuse(self: Path, *args: Any, **kwargs: Any) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    message = _one_line_error(runner.invoke(app, ["graph", "-o", str(target)]))
    assert "Permission denied" in message


def test_cli_graph_output_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "new" / "g.mmd"
    result = runner.invoke(app, ["graph", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").strip() == (FIXTURES / "graph_default.mmd").read_text().strip()

"""Resuming a JSONL output: what a crash leaves at the end is repaired without losing finished lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.batch import done_ids, repair_tail
from claimflow.errors import InputError


def test_a_line_cut_short_by_a_crash_is_dropped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a", "result": 1}\n{"id": "b", "res')
    repair_tail(out)
    assert out.read_bytes() == b'{"id": "a", "result": 1}\n'
    assert done_ids(out) == {"a"}


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a", "result": 1}\n{"id": "b", "result": 2}')
    repair_tail(out)
    assert out.read_bytes() == b'{"id": "a", "result": 1}\n{"id": "b", "result": 2}\n'
    assert done_ids(out) == {"a", "b"}


def test_a_corrupt_middle_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    text = '{"id": "a"}\n{"id": oops}\n{"id": "c"}\n'
    out.write_text(text, encoding="utf-8")
    repair_tail(out)
    with pytest.raises(InputError, match=r"out\.jsonl:2: not valid JSON"):
        done_ids(out)
    assert out.read_text(encoding="utf-8") == text  # nothing rewritten


def test_a_line_without_an_id_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r":2: a result line needs an 'id'"):
        done_ids(out)

"""Many claims, one JSONL line each, resumable: a rerun skips the ids already written."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claimflow.errors import ClaimflowError, InputError
from claimflow.io import iter_jsonl, output_error, prepare_output, refuse_folder
from claimflow.verifier import Verifier

RESERVED = {"id", "claim", "evidence", "result", "error"}


def repair_tail(path: Path) -> None:
    """Make the file end on a clean line before appending: a last line cut short by a crash is
    dropped; a complete, valid last line that only lacks its newline is kept and given one.
    A path that cannot be opened for writing (a folder, no permission) is an :class:`InputError`."""
    refuse_folder(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb+") as handle:
            data = handle.read()
            if data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            try:
                json.loads(data[cut:].decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                handle.truncate(cut)
            else:
                handle.write(b"\n")
    except OSError as exc:
        raise output_error(path, exc) from exc


def done_ids(path: Path, *, retry_errors: bool = False) -> set[str]:
    """The ids already written to ``path``; a line that is not a JSON object with an ``id`` is an
    :class:`InputError` naming the file and line (the file is left as it is)."""
    ids: set[str] = set()
    if not path.exists():
        return ids
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise InputError(
                f"{path}:{number}: not valid JSON ({reason}); the finished lines are kept: fix or delete "
                "this line and rerun to resume"
            ) from exc
        if not isinstance(record, dict) or "id" not in record:
            raise InputError(f"{path}:{number}: a result line needs an 'id'; fix or delete it and rerun")
        if retry_errors and "error" in record:
            continue
        ids.add(str(record["id"]))
    return ids


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    written: int = 0
    errors: int = 0


def load_items(path: str, encoding: str = "utf-8") -> list[tuple[str, dict[str, Any]]]:
    items: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, record in iter_jsonl(path, encoding):
        if "id" not in record or "claim" not in record:
            raise InputError(f"{path}:{number}: each line needs 'id' and 'claim' (and usually 'evidence')")
        item_id = str(record["id"])
        if item_id in seen:
            raise InputError(f"{path}:{number}: id {item_id!r} appears twice; ids must be unique for resuming")
        seen.add(item_id)
        items.append((item_id, record))
    return items


def run_batch(
    verifier: Verifier,
    items: Iterable[tuple[str, dict[str, Any]]],
    output: Path,
    *,
    force: bool = False,
    retry_errors: bool = False,
    on_item: Callable[[str, bool], None] | None = None,
) -> BatchSummary:
    """Verify each item and append one line per item to ``output`` as soon as it is done.

    A claim that fails with a :class:`ClaimflowError` input problem gets an ``error`` line and the
    batch goes on; other errors (a backend down) stop the batch, and the finished lines stay.
    """
    items = list(items)
    summary = BatchSummary(total=len(items))
    prepare_output(output)
    repair_tail(output)
    finished = done_ids(output, retry_errors=retry_errors)
    try:
        out = output.open("a", encoding="utf-8")
    except OSError as exc:
        raise output_error(output, exc) from exc
    with out:
        for item_id, record in items:
            if item_id in finished:
                summary.skipped += 1
                if on_item:
                    on_item(item_id, False)
                continue
            line: dict[str, Any] = {"id": record["id"]}
            line.update({k: v for k, v in record.items() if k not in RESERVED})
            try:
                result = verifier.verify(record["claim"], record.get("evidence") or [], force=force)
                line["result"] = result.model_dump(mode="json")
            except InputError as exc:
                line["error"] = {"type": type(exc).__name__, "message": str(exc)}
                summary.errors += 1
            except ClaimflowError:
                raise
            try:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:  # e.g. the disk is full: the lines written so far stay
                raise output_error(output, exc) from exc
            summary.written += 1
            if on_item:
                on_item(item_id, True)
    return summary

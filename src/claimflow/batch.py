"""Many claims, one JSONL line each, resumable: a rerun skips the ids already written.

Claims go through the :class:`~claimflow.verifier.Verifier` in chunks (``chunk_size``): the encoder
stages are batched across the claims of a chunk (:meth:`Verifier.verify_many`), the generative
stages run claim by claim. :func:`run_batch` runs in this process; :func:`run_batch_workers` spreads
the chunks over ``workers`` processes, each with its own verifier (one model load per process);
:mod:`claimflow.batch_ray` over a Ray cluster. All of them write the lines in input order, after
each chunk, so a rerun skips the finished ids and a crash loses at most the unfinished chunks.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from claimflow.config import PipelineConfig
from claimflow.errors import InputError
from claimflow.io import iter_jsonl, output_error, prepare_output, refuse_folder
from claimflow.verifier import Verifier

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchSummary",
    "ConfigVerifier",
    "VerifierFactory",
    "done_ids",
    "load_items",
    "repair_tail",
    "run_batch",
    "run_batch_workers",
    "verify_records",
    "write_batch",
]

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


DEFAULT_CHUNK_SIZE = 16
"""Claims per chunk: the unit of cross-claim batching, of each worker's share and of each write."""

Record = dict[str, Any]
LineSource = Callable[[list[Record]], Iterator[Record]]
"""Turns the pending records into their result lines, one per record, in input order."""


class VerifierFactory(Protocol):
    """Builds a :class:`Verifier` in a worker process or Ray actor (it must pickle)."""

    def __call__(self) -> Verifier: ...


@dataclass(frozen=True)
class ConfigVerifier:
    """The default :class:`VerifierFactory`: ``Verifier(config)``; ``threads`` caps each backend's CPU
    threads (those that leave ``threads`` unset) and torch's, so that workers sharing a machine do
    not oversubscribe it."""

    config: PipelineConfig
    threads: int | None = None

    def __call__(self) -> Verifier:
        config = self.config
        if self.threads is not None:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                import torch

                torch.set_num_threads(self.threads)
            backends = {
                key: b if b.threads is not None else b.model_copy(update={"threads": self.threads})
                for key, b in config.backends.items()
            }
            config = config.model_copy(update={"backends": backends})
        return Verifier(config)


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


def verify_records(verifier: Verifier, records: Sequence[Record], *, force: bool = False) -> list[Record]:
    """The result line of each record (``id``, its other fields, then ``result`` or ``error``), the
    records verified together (:meth:`Verifier.verify_many`). A claim with an input problem gets an
    ``error``; other errors (a backend down) propagate."""
    outcomes = verifier.verify_many([(r["claim"], r.get("evidence") or []) for r in records], force=force)
    lines = []
    for record, outcome in zip(records, outcomes, strict=True):
        line: Record = {"id": record["id"]}
        line.update({k: v for k, v in record.items() if k not in RESERVED})
        if isinstance(outcome, InputError):
            line["error"] = {"type": type(outcome).__name__, "message": str(outcome)}
        else:
            line["result"] = outcome.model_dump(mode="json")
        lines.append(line)
    return lines


def chunked(records: Sequence[Record], size: int) -> list[list[Record]]:
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


def write_batch(
    items: Iterable[tuple[str, Record]],
    output: Path,
    lines: LineSource,
    *,
    retry_errors: bool = False,
    on_item: Callable[[str, bool], None] | None = None,
) -> BatchSummary:
    """Append the lines ``lines`` makes for the items not yet in ``output``, in input order, each one
    flushed and fsynced as it comes; the engines of this module and of :mod:`claimflow.batch_ray`
    share this writer and its resume rules."""
    items = list(items)
    summary = BatchSummary(total=len(items))
    prepare_output(output)
    repair_tail(output)
    finished = done_ids(output, retry_errors=retry_errors)
    pending = []
    for item_id, record in items:
        if item_id in finished:
            summary.skipped += 1
            if on_item:
                on_item(item_id, False)
        else:
            pending.append(record)
    if not pending:
        return summary
    try:
        out = output.open("a", encoding="utf-8")
    except OSError as exc:
        raise output_error(output, exc) from exc
    with out:
        for line in lines(pending):
            try:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:  # e.g. the disk is full: the lines written so far stay
                with contextlib.suppress(OSError):  # closing flushes the failed line again: not a 2nd error
                    out.close()
                raise output_error(output, exc) from exc
            summary.written += 1
            summary.errors += "error" in line
            if on_item:
                on_item(str(line["id"]), True)
    return summary


def run_batch(
    verifier: Verifier,
    items: Iterable[tuple[str, dict[str, Any]]],
    output: Path,
    *,
    force: bool = False,
    retry_errors: bool = False,
    on_item: Callable[[str, bool], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> BatchSummary:
    """Verify each item not yet in ``output`` and append its line, a chunk of ``chunk_size`` claims at
    a time (the encoder stages batched across the chunk); ``chunk_size=1`` is the claim-at-a-time loop.

    A claim that fails with an :class:`InputError` gets an ``error`` line and the batch goes on; other
    errors (a backend down) stop the batch, and the finished lines stay.
    """

    def lines(pending: list[Record]) -> Iterator[Record]:
        for chunk in chunked(pending, chunk_size):
            yield from verify_records(verifier, chunk, force=force)

    return write_batch(items, output, lines, retry_errors=retry_errors, on_item=on_item)


_WORKER: dict[str, Verifier] = {}


def _start_worker(factory: VerifierFactory) -> None:
    _WORKER["verifier"] = factory()


def _verify_in_worker(records: list[Record], force: bool) -> list[Record]:
    return verify_records(_WORKER["verifier"], records, force=force)


def run_batch_workers(
    factory: VerifierFactory,
    items: Iterable[tuple[str, dict[str, Any]]],
    output: Path,
    *,
    workers: int = 2,
    force: bool = False,
    retry_errors: bool = False,
    on_item: Callable[[str, bool], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> BatchSummary:
    """Like :func:`run_batch`, with the chunks spread over ``workers`` processes (spawned, each building
    its verifier with ``factory`` once): for engines that run one sequence at a time (llama.cpp
    in-process), processes are how several claims generate at once. Lines are written in input
    order as the chunks finish."""
    import multiprocessing

    if workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")

    def lines(pending: list[Record]) -> Iterator[Record]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(factory,)) as pool:
            chunks = chunked(pending, chunk_size)
            try:
                for done in pool.map(_verify_in_worker, chunks, [force] * len(chunks)):
                    yield from done
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    return write_batch(items, output, lines, retry_errors=retry_errors, on_item=on_item)

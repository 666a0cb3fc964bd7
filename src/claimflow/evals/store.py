"""SQLite run store: every prediction is committed as it is made, so a killed run resumes where
it stopped; model calls are cached by content across variants and runs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claimflow.errors import ClaimflowError, InputError
from claimflow.io import prepare_output

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL, claimflow_version TEXT, git_commit TEXT
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL, variant TEXT NOT NULL, item_id TEXT NOT NULL,
    gold TEXT, label TEXT, probabilities TEXT NOT NULL, parse_error TEXT, raw_output TEXT,
    demo_ids TEXT NOT NULL, prompt_ref TEXT NOT NULL, seconds REAL NOT NULL, model_calls INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (run_id, variant, item_id)
);
CREATE TABLE IF NOT EXISTS call_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL);
"""


@dataclass(frozen=True)
class PredictionRow:
    variant: str
    item_id: str
    gold: str | None
    label: str | None
    probabilities: dict[str, float]
    parse_error: str | None
    raw_output: str | None
    demo_ids: list[str]
    prompt_ref: str
    seconds: float
    model_calls: int
    prompt_tokens: int
    created: float = 0.0


def content_key(payload: Any) -> str:
    """sha256 of a canonical JSON rendering of ``payload``."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


class RunStore:
    def __init__(self, path: Path) -> None:
        """Open (or create) the store; an unusable path or a file that is not a store is an
        :class:`~claimflow.errors.InputError` naming it."""
        self.path = path
        prepare_output(path)
        try:
            self.db = sqlite3.connect(path, timeout=30)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open the run store {path}: {exc}; choose a writable location") from exc
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise _store_error(path, exc) from exc

    def close(self) -> None:
        self.db.close()

    # --- runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        spec: dict[str, Any],
        version: str,
        commit: str | None,
        *,
        normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> bool:
        """Record the run; False when it already exists (a resume). A different spec is refused.

        ``normalize`` reads a stored spec as the current version would (e.g. validate and dump it
        again), so a spec written by an older version in another layout still resumes."""
        row = self.db.execute("SELECT spec FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        text = json.dumps(spec, sort_keys=True)
        if row is not None:
            if row[0] != text and not _same_after(normalize, row[0], text):
                from claimflow.errors import ConfigError

                raise ConfigError(
                    f"run {run_id!r} already exists in {self.path} with a different spec: "
                    "give the changed spec a new name (or delete the run)"
                )
            return False
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", (run_id, text, time.time(), version, commit))
        return True

    def runs(self) -> list[tuple[str, float]]:
        return list(self.db.execute("SELECT run_id, created FROM runs ORDER BY created"))

    def spec(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT spec FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            from claimflow.errors import InputError

            known = ", ".join(r for r, _ in self.runs()) or "none"
            raise InputError(f"no run {run_id!r} in {self.path}; runs: {known}")
        result: dict[str, Any] = json.loads(row[0])
        return result

    # --- predictions -----------------------------------------------------------------------------

    def done(self, run_id: str, variant: str) -> set[str]:
        rows = self.db.execute("SELECT item_id FROM predictions WHERE run_id = ? AND variant = ?", (run_id, variant))
        return {r[0] for r in rows}

    def add(self, run_id: str, row: PredictionRow) -> None:
        """Insert one prediction and commit it at once (a crash loses at most the item in flight); a
        failed write (a full disk) is an :class:`~claimflow.errors.InputError`, the rows before it kept."""
        try:
            self._insert(run_id, row)
        except sqlite3.OperationalError as exc:
            raise _store_error(self.path, exc) from exc

    def _insert(self, run_id: str, row: PredictionRow) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    row.variant,
                    row.item_id,
                    row.gold,
                    row.label,
                    json.dumps(row.probabilities),
                    row.parse_error,
                    row.raw_output,
                    json.dumps(row.demo_ids),
                    row.prompt_ref,
                    row.seconds,
                    row.model_calls,
                    row.prompt_tokens,
                    time.time(),
                ),
            )

    def predictions(self, run_id: str, variant: str | None = None) -> Iterator[PredictionRow]:
        query = "SELECT variant, item_id, gold, label, probabilities, parse_error, raw_output, demo_ids, prompt_ref, "
        query += "seconds, model_calls, prompt_tokens, created FROM predictions WHERE run_id = ?"
        args: list[Any] = [run_id]
        if variant is not None:
            query += " AND variant = ?"
            args.append(variant)
        for r in self.db.execute(query + " ORDER BY variant, item_id", args):
            yield PredictionRow(
                r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], json.loads(r[7]), r[8], r[9], r[10], r[11], r[12]
            )

    # --- model-call cache --------------------------------------------------------------------------

    def cached(self, key: str) -> Any | None:
        row = self.db.execute("SELECT value FROM call_cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def cache(self, key: str, value: Any) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO call_cache VALUES (?, ?, ?)", (key, json.dumps(value), time.time()))


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> InputError:
    """The :class:`InputError` for a store that cannot be read or written."""
    if not isinstance(exc, sqlite3.OperationalError):  # "file is not a database" and the like
        return InputError(f"{path} is not a run store (SQLite): {exc}; give another --store path")
    return InputError(f"cannot write the run store {path}: {exc}; the predictions committed before are kept")


def _same_after(normalize: Callable[[dict[str, Any]], dict[str, Any]] | None, stored: str, text: str) -> bool:
    """Whether the stored spec reads as ``text`` once normalized (False when it no longer validates)."""
    if normalize is None:
        return False
    try:
        return json.dumps(normalize(json.loads(stored)), sort_keys=True) == text
    except (ClaimflowError, ValueError, TypeError):
        return False

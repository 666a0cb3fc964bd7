"""The runs database: LangGraph's SQLite checkpointer (every step's state, by run id = thread id)
plus a small index of runs (claim, config, status, result, replay parent) in the same file.

It lives in ``graphs/`` because it is the graph's persistence: the checkpointer is compiled into the
graph (:func:`~claimflow.graphs.build.build_graph`), and its serializer must know exactly the classes
the graph state holds (:mod:`claimflow.graphs.state`, :mod:`claimflow.graphs.trace`, next door). The
:class:`~claimflow.verifier.Verifier` records runs into it, and the tools over recorded runs
(:mod:`claimflow.debug`) read them back, both from above; it imports nothing above ``graphs``.
"""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from claimflow.config import PipelineConfig
from claimflow.errors import ConfigError, InputError
from claimflow.graphs.trace import TRACE_TYPES
from claimflow.io import parse_yaml
from claimflow.types import EvidenceStance, Justification, Justifications, LabelScores, VerificationResult

DEFAULT_DB = Path("runs/trace.sqlite")
DB_ENV = "CLAIMFLOW_RUNS_DB"
STATE_TYPES: tuple[type[BaseModel], ...] = (LabelScores, EvidenceStance, Justification, Justifications, *TRACE_TYPES)
"""The classes the graph state holds; the only ones the checkpoint serializer will rebuild."""

LEGACY_MODULES: dict[str, str] = {"claimflow.graphs.debug.trace": "claimflow.graphs.trace"}
"""Old module path → the module that holds its classes now. A checkpoint names each class by module
and name, so runs databases written before the trace channel moved into ``graphs/`` (up to 0.1.0)
name ``claimflow.graphs.debug.trace.NodeTrace``; those names are allowed and resolve to the current
classes, so old runs still read back, replay and report."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claimflow_runs (
    run_id      TEXT PRIMARY KEY,
    created     REAL NOT NULL,
    finished    REAL,
    status      TEXT NOT NULL,
    claim       TEXT NOT NULL,
    config      TEXT NOT NULL,
    parent_run  TEXT,
    from_node   TEXT,
    changes     TEXT NOT NULL DEFAULT '[]',
    result      TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS claimflow_runs_created ON claimflow_runs (created);
"""


def default_db() -> Path:
    """``$CLAIMFLOW_RUNS_DB``, else ``runs/trace.sqlite`` under the current directory."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def checkpoint_serde() -> Any:
    """LangGraph's serializer, restricted to the types our state holds (nothing else is revived)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    allowed = [(t.__module__, t.__name__) for t in STATE_TYPES]
    for old, new in LEGACY_MODULES.items():
        # the serializer imports a class's module by name: let the old name find the current module
        sys.modules.setdefault(old, importlib.import_module(new))
        allowed += [(old, name) for module, name in allowed if module == new]
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs index."""

    run_id: str
    created: float
    finished: float | None
    status: str
    """``running`` (or died without a word), ``done``, ``error``."""
    claim: str
    config_yaml: str
    parent_run: str | None = None
    from_node: str | None = None
    changes: list[str] = field(default_factory=list)
    result_json: str | None = None
    error: str | None = None

    @cached_property
    def config(self) -> PipelineConfig:
        data = parse_yaml(self.config_yaml, f"run {self.run_id} config", mapping=True)
        stance = data.get("evidence_stance")
        if isinstance(stance, dict) and "predictor" not in stance:
            stance["predictor"] = "prompt"  # recorded before the trained stance model: it ran the prompt
        return PipelineConfig.from_dict(data, origin=f"run {self.run_id} config")

    @cached_property
    def result(self) -> VerificationResult | None:
        return VerificationResult.model_validate_json(self.result_json) if self.result_json else None

    def thread(self) -> dict[str, Any]:
        """The LangGraph config that addresses this run's checkpoints."""
        return {"configurable": {"thread_id": self.run_id}}


class TraceStore:
    """One SQLite file: checkpoints (``checkpoints``/``writes`` tables, LangGraph's) and ``claimflow_runs``.

    ``saver`` is the LangGraph checkpointer to compile graphs with. The file and its folder are
    created on first use; ``close()`` releases the connection.
    """

    def __init__(self, path: str | Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the runs database {self.path}: {exc}") from exc
        self.saver = SqliteSaver(self.conn, serde=checkpoint_serde())
        self.saver.setup()
        with self.saver.lock:
            self.conn.executescript(_SCHEMA)
            self.conn.commit()

    @classmethod
    def open_existing(cls, path: str | Path) -> TraceStore:
        """Open a database that must exist already (for reading runs back)."""
        if not Path(path).exists():
            raise InputError(
                f"no runs database at {path}: record runs with `claimflow verify --record` "
                f"(or pass --db / set ${DB_ENV})"
            )
        return cls(path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: Sequence[Any]) -> None:
        with self.saver.lock:
            self.conn.execute(sql, tuple(args))
            self.conn.commit()

    # --- writing -------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        claim: str,
        config: PipelineConfig,
        *,
        parent_run: str | None = None,
        from_node: str | None = None,
        changes: Sequence[str] = (),
    ) -> None:
        try:
            self._write(
                "INSERT INTO claimflow_runs (run_id, created, status, claim, config, parent_run, from_node, changes)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (run_id, time.time(), claim, config.to_yaml(), parent_run, from_node, json.dumps(list(changes))),
            )
        except sqlite3.IntegrityError as exc:
            raise InputError(f"run id {run_id!r} is already taken in {self.path}: choose another") from exc

    def finish_run(self, run_id: str, result: VerificationResult) -> None:
        self._write(
            "UPDATE claimflow_runs SET status = 'done', finished = ?, result = ? WHERE run_id = ?",
            (time.time(), result.model_dump_json(), run_id),
        )

    def fail_run(self, run_id: str, error: str) -> None:
        self._write(
            "UPDATE claimflow_runs SET status = 'error', finished = ?, error = ? WHERE run_id = ?",
            (time.time(), error, run_id),
        )

    # --- reading -------------------------------------------------------------------------------

    _COLUMNS = "run_id, created, finished, status, claim, config, parent_run, from_node, changes, result, error"

    @staticmethod
    def _info(row: Sequence[Any]) -> RunInfo:
        return RunInfo(
            run_id=row[0],
            created=row[1],
            finished=row[2],
            status=row[3],
            claim=row[4],
            config_yaml=row[5],
            parent_run=row[6],
            from_node=row[7],
            changes=list(json.loads(row[8] or "[]")),
            result_json=row[9],
            error=row[10],
        )

    def runs(self, limit: int = 20) -> list[RunInfo]:
        """The most recent runs first."""
        with self.saver.lock:
            rows = self.conn.execute(
                f"SELECT {self._COLUMNS} FROM claimflow_runs ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._info(r) for r in rows]

    def get(self, run_id: str) -> RunInfo:
        """A run by id, unique id prefix, or ``last`` (the most recent)."""
        with self.saver.lock:
            if run_id in ("last", "latest"):
                rows = self.conn.execute(
                    f"SELECT {self._COLUMNS} FROM claimflow_runs ORDER BY created DESC, rowid DESC LIMIT 1"
                ).fetchall()
            else:
                rows = self.conn.execute(
                    f"SELECT {self._COLUMNS} FROM claimflow_runs WHERE substr(run_id, 1, length(?)) = ? LIMIT 3",
                    (run_id, run_id),
                ).fetchall()
                exact = [r for r in rows if r[0] == run_id]
                rows = exact or rows
        if not rows:
            raise InputError(f"no run {run_id!r} in {self.path}: `claimflow runs` lists them")
        if len(rows) > 1:
            raise InputError(f"run id prefix {run_id!r} is ambiguous ({', '.join(r[0] for r in rows)}, ...)")
        return self._info(rows[0])

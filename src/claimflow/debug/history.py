"""Reading a stored run back: its checkpoints (oldest first), final state, and the report page."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claimflow.config import BackendConfig
from claimflow.debug.report_html import render_report
from claimflow.errors import ConfigError
from claimflow.graphs.trace_store import RunInfo, TraceStore
from claimflow.llm.base import Backend
from claimflow.models.store import ModelStore
from claimflow.verifier import TracedRun, Verifier


def no_models(config: BackendConfig, store: ModelStore) -> Backend:
    """A backend factory for reading runs back: building the graph must load no model."""
    raise ConfigError(f"reading a stored run loads no model (asked for {config.kind}:{config.model})")


@dataclass(frozen=True)
class StoredRun:
    info: RunInfo
    history: list[Any]
    """LangGraph ``StateSnapshot``s, oldest first."""
    drawable: Any

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.history[-1].values) if self.history else {}


def load_run(store: TraceStore, run_id: str) -> StoredRun:
    """The run's index row, its state history and its graph (rebuilt from the stored config)."""
    info = store.get(run_id)
    verifier = Verifier(info.config, trace_store=store, backend_factory=no_models)
    history = list(verifier.graph.get_state_history(info.thread()))[::-1]
    return StoredRun(info=info, history=history, drawable=verifier.graph.get_graph())


def inputs_by_node(history: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
    """The state each node saw: the values of the checkpoint whose next task was that node."""
    out: dict[str, Mapping[str, Any]] = {}
    for snapshot in history:
        for node in snapshot.next:
            out[node] = dict(snapshot.values)
    return out


def report_for_stored(run: StoredRun) -> str:
    cfg = run.info.config.evidence_stance
    return render_report(
        drawable=run.drawable,
        state=run.state,
        result=run.info.result,
        run=run.info,
        inputs_by_node=inputs_by_node(run.history),
        support_label=cfg.support_label,
        refute_label=cfg.refute_label,
        generated_at=time.time(),
    )


def report_for_traced(verifier: Verifier, run: TracedRun) -> str:
    """The page for a run that just finished (no store needed: the final state carries the trace)."""
    cfg = verifier.config.evidence_stance
    return render_report(
        drawable=verifier.graph.get_graph(),
        state=run.state,
        result=run.result,
        support_label=cfg.support_label,
        refute_label=cfg.refute_label,
        generated_at=time.time(),
    )

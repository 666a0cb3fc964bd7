"""Wraps a node function with timing, model-call counting, the stage record and its trace entry."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.graphs.trace import NodeTrace, ReadRecorder
from claimflow.graphs.tracing_backend import recording
from claimflow.llm.base import CallCounter, Engine


def instrumented(name: str, backends: Callable[[], Sequence[Engine]], fn: NodeFn) -> NodeFn:
    """``backends`` is called at run time (models load lazily) and deduplicated by identity: their
    counters give the node's calls and passes. The model calls the node makes through a
    :class:`~claimflow.graphs.tracing_backend.TracingBackend` go into its trace entry."""

    def run(state: VerificationState) -> dict[str, Any]:
        used = list({id(b): b for b in backends()}.values())
        counters = [CallCounter.begin(b) for b in used]
        reads = ReadRecorder(dict(state))
        started_at = time.time()
        start = time.perf_counter()
        with recording() as log:
            update = fn(cast(VerificationState, reads))
        seconds = time.perf_counter() - start
        calls = sum(c.calls() for c in counters)
        passes = sum(c.forward_passes() for c in counters)
        writes = list(update)
        update["node_seconds"] = {name: seconds}
        update["model_calls"] = {name: calls}
        update["forward_passes"] = {name: passes}
        update["stages_run"] = [name]
        update["trace"] = [
            NodeTrace(
                node=name,
                reads=reads.reads,
                writes=writes,
                calls=log.calls,
                seconds=seconds,
                model_calls=calls,
                forward_passes=passes,
                started_at=started_at,
            )
        ]
        return update

    run.__name__ = name
    return run

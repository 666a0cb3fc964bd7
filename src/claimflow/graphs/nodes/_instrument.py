"""Wraps a node function with timing, model-call counting and the stage record."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.llm.base import CallCounter, Engine


def instrumented(name: str, backends: Callable[[], Sequence[Engine]], fn: NodeFn) -> NodeFn:
    """``backends`` is called at run time (models load lazily) and deduplicated by identity."""

    def run(state: VerificationState) -> dict[str, Any]:
        used = list({id(b): b for b in backends()}.values())
        counters = [CallCounter.begin(b) for b in used]
        start = time.perf_counter()
        update = fn(state)
        update["node_seconds"] = {name: time.perf_counter() - start}
        update["model_calls"] = {name: sum(c.calls() for c in counters)}
        update["forward_passes"] = {name: sum(c.forward_passes() for c in counters)}
        update["stages_run"] = [name]
        return update

    run.__name__ = name
    return run

"""build_graph(components) -> a compiled LangGraph StateGraph over the configured stages."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from claimflow.config import StageName
from claimflow.graphs.components import Components
from claimflow.graphs.nodes import make_check_worthiness, make_evidence_stance, make_justify, make_veracity
from claimflow.graphs.nodes._instrument import instrumented
from claimflow.graphs.state import NodeFn, VerificationState
from claimflow.llm.base import Engine

NODE_MAKERS: dict[StageName, Callable[[Components], NodeFn]] = {
    "check_worthiness": make_check_worthiness,
    "evidence_stance": make_evidence_stance,
    "justify": make_justify,
    "veracity": make_veracity,
}


def _router(next_stage: str) -> Callable[[VerificationState], str]:
    """Go on to ``next_stage`` unless the gate closed or there is no evidence to reason over.

    The gate closes (``not_check_worthy``) only under ``check_worthiness.gate: stop`` or when nothing
    would come after; ``pass``, ``forced`` and ``annotated`` go on (graphs/nodes/check_worthiness.py)."""

    def route(state: VerificationState) -> str:
        if state.get("gate") == "not_check_worthy":
            return END
        if not state.get("evidence"):
            return END
        return next_stage

    route.__name__ = f"route_to_{next_stage}"
    return route


def _stage_backends(components: Components, stage: StageName) -> list[Engine]:
    return [components.stage_backend(stage)]


def build_graph(components: Components, *, checkpointer: Any = None) -> Any:
    """Wire the configured stages in order; every node is instrumented (time, calls, passes, trace).

    ``checkpointer`` (a LangGraph ``BaseCheckpointSaver``, e.g. the SQLite one of
    :class:`~claimflow.graphs.trace_store.TraceStore`) keeps every step's state under the run's
    ``thread_id``; without one nothing is stored."""
    stages = components.config.stages
    graph: Any = StateGraph(VerificationState)
    for stage in stages:
        node = NODE_MAKERS[stage](components)
        graph.add_node(stage, instrumented(stage, partial(_stage_backends, components, stage), node))
    # Only two places can end a run early: the gate after check_worthiness, and the lack of
    # evidence before the first evidence stage. Every other transition is a plain edge.
    previous: str = START
    for stage in stages:
        if stage != "check_worthiness" and previous in (START, "check_worthiness"):
            graph.add_conditional_edges(previous, _router(stage), {stage: stage, END: END})
        else:
            graph.add_edge(previous, stage)
        previous = stage
    graph.add_edge(previous, END)
    return graph.compile(checkpointer=checkpointer)

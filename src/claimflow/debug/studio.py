"""The graph factory ``langgraph.json`` points at, for ``langgraph dev`` / LangGraph Studio.

``make_graph`` returns the compiled verification graph of ``$CLAIMFLOW_CONFIG`` (a pipeline YAML)
or of the default config, without a checkpointer: the LangGraph server brings its own. Models load
on the first run, not here. Graph input: ``{"claim": str, "evidence": [str, ...], "force": bool}``.

The graph is built once per config path, when this module is imported: the LangGraph dev server
calls the factory inside its event loop for every run, where blocking file reads (the prompt
templates) are refused, so the call must be a cache hit.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from claimflow.config import PipelineConfig

CONFIG_ENV = "CLAIMFLOW_CONFIG"


@cache
def _build(config_path: str | None) -> Any:
    from claimflow.verifier import Verifier

    pipeline = PipelineConfig.from_yaml(config_path) if config_path else PipelineConfig()
    return Verifier(pipeline).graph


def make_graph(config: Any = None) -> Any:
    """Factory for the LangGraph server (it may pass its ``RunnableConfig``; it is not needed)."""
    return _build(os.environ.get(CONFIG_ENV) or None)


make_graph()  # build now, outside any event loop

"""The LangGraph pipeline: the components a config resolves to, the nodes, the compiled graph, its trace.

Predictor kinds are registered here (:func:`register_predictor`; the built-in ones on import of this
package, by :mod:`claimflow.graphs.builtin_predictors`).
"""

from claimflow.graphs import builtin_predictors  # noqa: F401 - registers the built-in predictor kinds
from claimflow.graphs.build import build_graph
from claimflow.graphs.components import SHIPPED_ARTIFACTS, Components, shipped_artifact
from claimflow.graphs.predictor_registry import (
    Classifier,
    PredictorContext,
    PredictorFactory,
    PredictorSpec,
    Resolved,
    StanceScorer,
    predictor_spec,
    register_predictor,
    registered_predictors,
    unregister_predictor,
)
from claimflow.graphs.state import VerificationState
from claimflow.graphs.trace import NodeTrace
from claimflow.graphs.trace_store import TraceStore
from claimflow.graphs.tracing_backend import TracingBackend

__all__ = [
    "SHIPPED_ARTIFACTS",
    "Classifier",
    "Components",
    "NodeTrace",
    "PredictorContext",
    "PredictorFactory",
    "PredictorSpec",
    "Resolved",
    "StanceScorer",
    "TraceStore",
    "TracingBackend",
    "VerificationState",
    "build_graph",
    "predictor_spec",
    "register_predictor",
    "registered_predictors",
    "shipped_artifact",
    "unregister_predictor",
]

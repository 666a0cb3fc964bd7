"""Inference backends behind one protocol (:class:`Backend`), one ``kind`` each.

``make_backend(config, store)`` builds the backend a :class:`~claimflow.config.BackendConfig`
describes; :func:`register_backend` adds a kind of your own (see :mod:`claimflow.llm.registry`).
Importing this package registers the built-in kinds and loads no engine: the engine backends
(``LlamaCppBackend``, ``TransformersBackend``, ``OpenAIBackend``, ``VLLMBackend``) and their helpers
are imported from their modules on first access, ``claimflow.llm.LlamaCppBackend`` included.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from claimflow.llm.base import (
    Backend,
    BackendStats,
    CallCounter,
    Capabilities,
    Engine,
    Generation,
    GenRequest,
    Message,
    ScoreRequest,
)
from claimflow.llm.factory import make_backend
from claimflow.llm.fake import FakeBackend
from claimflow.llm.registry import BackendFactory, register_backend, registered_backends, unregister_backend
from claimflow.llm.tokens import continuation_ids

if TYPE_CHECKING:
    from claimflow.llm.llamacpp import ChatTokenizer, LlamaCppBackend
    from claimflow.llm.openai_backend import OpenAIBackend
    from claimflow.llm.transformers_backend import TransformersBackend, encode_chat
    from claimflow.llm.vllm_backend import VLLMBackend

_LAZY = {
    "ChatTokenizer": "claimflow.llm.llamacpp",
    "LlamaCppBackend": "claimflow.llm.llamacpp",
    "OpenAIBackend": "claimflow.llm.openai_backend",
    "TransformersBackend": "claimflow.llm.transformers_backend",
    "VLLMBackend": "claimflow.llm.vllm_backend",
    "encode_chat": "claimflow.llm.transformers_backend",
}
"""Public names of the engine modules, imported on first access (PEP 562)."""

__all__ = [
    "Backend",
    "BackendFactory",
    "BackendStats",
    "CallCounter",
    "Capabilities",
    "ChatTokenizer",
    "Engine",
    "FakeBackend",
    "GenRequest",
    "Generation",
    "LlamaCppBackend",
    "Message",
    "OpenAIBackend",
    "ScoreRequest",
    "TransformersBackend",
    "VLLMBackend",
    "continuation_ids",
    "encode_chat",
    "make_backend",
    "register_backend",
    "registered_backends",
    "unregister_backend",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

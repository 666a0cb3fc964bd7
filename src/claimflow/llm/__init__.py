"""Inference backends behind one protocol (:class:`Backend`), one ``kind`` each.

``make_backend(config, store)`` builds the backend a :class:`~claimflow.config.BackendConfig`
describes; :func:`register_backend` adds a kind of your own (see :mod:`claimflow.llm.registry`).
Importing this package registers the built-in kinds and loads no engine: the engine backends stay
in their modules, imported when a backend of their kind is built (``claimflow.llm.llamacpp``:
``LlamaCppBackend``, ``ChatTokenizer``; ``transformers_backend``: ``TransformersBackend``,
``encode_chat``; ``openai_backend``: ``OpenAIBackend``; ``vllm_backend``: ``VLLMBackend``).
"""

from __future__ import annotations

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

__all__ = [
    "Backend",
    "BackendFactory",
    "BackendStats",
    "CallCounter",
    "Capabilities",
    "Engine",
    "FakeBackend",
    "GenRequest",
    "Generation",
    "Message",
    "ScoreRequest",
    "continuation_ids",
    "make_backend",
    "register_backend",
    "registered_backends",
    "unregister_backend",
]

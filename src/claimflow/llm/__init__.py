"""Inference backends behind one protocol (:class:`~claimflow.llm.base.Backend`), one ``kind`` each.

``make_backend(config, store)`` builds the backend a :class:`~claimflow.config.BackendConfig`
describes; :func:`register_backend` adds a kind of your own (see :mod:`claimflow.llm.registry`).
Importing this package registers the built-in kinds and loads no engine.
"""

from claimflow.llm.base import Backend
from claimflow.llm.factory import make_backend
from claimflow.llm.registry import BackendFactory, register_backend, registered_backends, unregister_backend

__all__ = ["Backend", "BackendFactory", "make_backend", "register_backend", "registered_backends", "unregister_backend"]

"""Backend kinds: each ``kind`` names a config class and the factory that builds its engine.

The built-in kinds (``llamacpp``, ``transformers``, ``openai``, ``vllm``, ``fake``) are registered
by :mod:`claimflow.llm.factory`. :func:`register_backend` is the extension point for your own::

    class EchoConfig(BackendConfig):
        kind: Literal["echo"] = "echo"
        prefix: str = ""

    register_backend("echo", EchoConfig, lambda config, store: EchoBackend(config.prefix))
    PipelineConfig.from_dict({"backends": {"default": {"kind": "echo", "prefix": ">"}}})

The config class is validated like the built-in ones (unknown keys are errors naming the kind),
and :func:`claimflow.llm.factory.make_backend` hands the validated config to the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from claimflow.config import (
    BUILTIN_BACKEND_KINDS,
    BackendConfig,
    backend_config_class,
    backend_kinds,
    register_backend_config,
    unregister_backend_config,
)
from claimflow.errors import BackendUnavailableError, ConfigError
from claimflow.llm.base import Backend
from claimflow.models.store import ModelStore

ConfigT = TypeVar("ConfigT", bound=BackendConfig)
BackendFactory = Callable[[Any, ModelStore], Backend]
"""Builds a backend from its kind's validated config; models resolve through the store."""

_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(kind: str, config_cls: type[ConfigT], factory: Callable[[ConfigT, ModelStore], Backend]) -> None:
    """Make ``kind`` a backend kind: configs naming it validate as ``config_cls`` and
    ``make_backend`` builds them with ``factory(config, store)``.

    ``config_cls`` subclasses :class:`~claimflow.config.BackendConfig` (the shared settings
    ``kind``, ``model``, ``context_length``, ``threads``, ``seed``), its ``kind`` typed
    ``Literal["<kind>"]`` with that default. Registering the same pair again is a no-op; a registered
    kind takes another pair only after :func:`unregister_backend`, and the built-in kinds never do.
    Raises :class:`~claimflow.errors.ConfigError` saying what is wrong.
    """
    if not callable(factory):
        raise ConfigError(f"backend kind {kind!r}: the factory must be callable as factory(config, store)")
    current = _FACTORIES.get(kind)
    if current is not None and (current is not factory or backend_config_class(kind) is not config_cls):
        if kind in BUILTIN_BACKEND_KINDS:
            raise ConfigError(f"backend kind {kind!r} is built in; register yours under another kind")
        raise ConfigError(
            f"backend kind {kind!r} is already registered ({backend_config_class(kind).__name__}); "
            f"unregister_backend({kind!r}) first"
        )
    register_backend_config(kind, config_cls)
    _FACTORIES[kind] = factory


def unregister_backend(kind: str) -> None:
    """Forget a kind added by :func:`register_backend` (built-in kinds stay); an unknown kind is ignored."""
    unregister_backend_config(kind)
    _FACTORIES.pop(kind, None)


def registered_backends() -> tuple[str, ...]:
    """The kinds :func:`make_backend` can build, sorted."""
    return tuple(kind for kind in backend_kinds() if kind in _FACTORIES)


def backend_factory(config: BackendConfig) -> BackendFactory:
    """The factory for ``config``'s kind, after checking ``config`` is that kind's config class."""
    expected = backend_config_class(config.kind)
    if not isinstance(config, expected):
        raise ConfigError(f"a {config.kind} backend needs a {expected.__name__}, got {type(config).__name__}")
    try:
        return _FACTORIES[config.kind]
    except KeyError:
        raise BackendUnavailableError(
            f"backend kind {config.kind!r} has a config class but no factory: "
            "register it with claimflow.llm.register_backend(kind, config_cls, factory)"
        ) from None

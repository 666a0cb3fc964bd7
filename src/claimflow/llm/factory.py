"""A backend config -> a loaded backend: the built-in kinds' factories, and ``make_backend``.

Each factory resolves the model through the store and imports its engine only when called, so
registering them loads nothing. Other kinds come from :func:`claimflow.llm.registry.register_backend`.
"""

from __future__ import annotations

import os

from claimflow.config import (
    BackendConfig,
    FakeBackendConfig,
    LlamaCppBackendConfig,
    OpenAIBackendConfig,
    TransformersBackendConfig,
    VLLMBackendConfig,
)
from claimflow.errors import ConfigError
from claimflow.llm.base import Backend
from claimflow.llm.registry import backend_factory, register_backend
from claimflow.models.store import ModelStore


def make_backend(config: BackendConfig, store: ModelStore) -> Backend:
    """Build the backend ``config`` describes with its kind's registered factory; ``config.model``
    resolves through the store (names, paths, hub ids)."""
    return backend_factory(config)(config, store)


def _threads(config: BackendConfig) -> int:
    return config.threads or os.cpu_count() or 1


def _llamacpp(config: LlamaCppBackendConfig, store: ModelStore) -> Backend:
    resolved = store.resolve(config.model)
    if resolved.format != "gguf":
        raise ConfigError(f"backends: llamacpp needs a GGUF model, and {config.model!r} is not one")
    from claimflow.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        str(resolved.path),
        model_id=resolved.name,
        sha256=resolved.sha256,
        context_length=config.context_length,
        threads=_threads(config),
        seed=config.seed,
    )


def _transformers(config: TransformersBackendConfig, store: ModelStore) -> Backend:
    resolved = store.resolve(config.model)
    from claimflow.llm.transformers_backend import TransformersBackend
    from claimflow.models.convert import hf_checkpoint

    location = str(hf_checkpoint(resolved, store)) if resolved.format == "gguf" else resolved.location
    return TransformersBackend(
        location,
        model_id=resolved.name,
        sha256=resolved.sha256,
        device=config.device,
        dtype=config.dtype,
        context_length=config.context_length,
        threads=_threads(config),
        seed=config.seed,
    )


def _openai(config: OpenAIBackendConfig, store: ModelStore) -> Backend:
    from claimflow.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(
        config.model,
        base_url=config.base_url,
        api_key=os.environ.get(config.api_key_env),
        api=config.api,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        top_logprobs=config.top_logprobs,
        seed=config.seed,
        context_length=config.context_length,
        max_concurrency=config.max_concurrency,
    )


def _vllm(config: VLLMBackendConfig, store: ModelStore) -> Backend:
    resolved = store.resolve(config.model)
    from claimflow.llm.vllm_backend import VLLMBackend

    return VLLMBackend(
        resolved.location, model_id=resolved.name, context_length=config.context_length, seed=config.seed
    )


def _fake(config: FakeBackendConfig, store: ModelStore) -> Backend:
    from claimflow.llm.fake import FakeBackend

    return FakeBackend(config.model)


register_backend("llamacpp", LlamaCppBackendConfig, _llamacpp)
register_backend("transformers", TransformersBackendConfig, _transformers)
register_backend("openai", OpenAIBackendConfig, _openai)
register_backend("vllm", VLLMBackendConfig, _vllm)
register_backend("fake", FakeBackendConfig, _fake)

"""BackendConfig -> a loaded backend."""

from __future__ import annotations

import os

from claimflow.config import BackendConfig
from claimflow.errors import BackendUnavailableError, ConfigError
from claimflow.llm.base import Backend
from claimflow.models.store import ModelStore


def make_backend(config: BackendConfig, store: ModelStore) -> Backend:
    """Resolve ``config.model`` through the store (names, paths, hub ids) and load the engine."""
    threads = config.threads or os.cpu_count() or 1
    if config.kind == "openai":
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
        )
    if config.kind == "fake":
        from claimflow.llm.fake import FakeBackend

        return FakeBackend(config.model)
    resolved = store.resolve(config.model)
    if config.kind == "llamacpp":
        if resolved.format != "gguf":
            raise ConfigError(f"backends: llamacpp needs a GGUF model, and {config.model!r} is not one")
        from claimflow.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend(
            str(resolved.path),
            model_id=resolved.name,
            sha256=resolved.sha256,
            context_length=config.context_length,
            threads=threads,
            seed=config.seed,
        )
    if config.kind == "transformers":
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
            threads=threads,
            seed=config.seed,
        )
    if config.kind == "vllm":
        from claimflow.llm.vllm_backend import VLLMBackend

        return VLLMBackend(
            resolved.location, model_id=resolved.name, context_length=config.context_length, seed=config.seed
        )
    raise BackendUnavailableError(f"unknown backend kind {config.kind!r}")

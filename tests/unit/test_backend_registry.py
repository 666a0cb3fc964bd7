"""Backend kinds: one config class per kind (a wrong key names the kind), the registry that builds
them, and the extension point for a kind of one's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import ValidationError
from tests.conftest import PROMPTED

from claimflow import PipelineConfig, Verifier
from claimflow.config import (
    BackendConfig,
    FakeBackendConfig,
    LlamaCppBackendConfig,
    OpenAIBackendConfig,
    TransformersBackendConfig,
    VLLMBackendConfig,
    backend_kinds,
)
from claimflow.errors import BackendUnavailableError, ConfigError
from claimflow.llm import make_backend, register_backend, registered_backends, unregister_backend
from claimflow.llm.base import Backend
from claimflow.llm.fake import FakeBackend
from claimflow.models.store import ModelStore

BUILT_IN = ("fake", "llamacpp", "openai", "transformers", "vllm")


def backend_of(data: dict[str, object]) -> BackendConfig:
    return PipelineConfig.from_dict({"backends": {"default": data}}).backends["default"]


# --- one config class per kind -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("llamacpp", LlamaCppBackendConfig),
        ("transformers", TransformersBackendConfig),
        ("openai", OpenAIBackendConfig),
        ("vllm", VLLMBackendConfig),
        ("fake", FakeBackendConfig),
    ],
)
def test_each_kind_validates_as_its_own_class(kind: str, cls: type[BackendConfig]) -> None:
    assert type(backend_of({"kind": kind, "model": "m"})) is cls
    built = BackendConfig(kind=kind, model="m")
    assert type(built) is cls
    assert built == cls(model="m")
    assert BackendConfig.model_validate({"kind": kind}) == cls()


def test_the_kind_defaults_to_llamacpp() -> None:
    assert type(BackendConfig()) is LlamaCppBackendConfig
    assert type(backend_of({"model": "m"})) is LlamaCppBackendConfig
    assert type(PipelineConfig().backends["default"]) is LlamaCppBackendConfig


@pytest.mark.parametrize(
    ("settings", "key", "kind", "owner"),
    [
        ({"kind": "llamacpp", "device": "cuda"}, "device", "llamacpp", "transformers"),
        ({"dtype": "float16"}, "dtype", "llamacpp", "transformers"),  # the default kind
        ({"kind": "transformers", "base_url": "http://x"}, "base_url", "transformers", "openai"),
        ({"kind": "openai", "device": "cuda"}, "device", "openai", "transformers"),
        ({"kind": "fake", "top_logprobs": 5}, "top_logprobs", "fake", "openai"),
    ],
)
def test_a_key_of_another_kind_is_an_error_naming_the_key_and_the_kind(
    settings: dict[str, object], key: str, kind: str, owner: str
) -> None:
    with pytest.raises(ConfigError, match=rf"backends\.default\.{key}: not a setting of the {kind} backend") as info:
        backend_of(settings)
    assert f"a setting of: {owner}" in str(info.value)


def test_a_key_no_kind_has_names_the_kind_and_its_settings() -> None:
    with pytest.raises(
        ConfigError, match=r"backends\.default\.devise: not a setting of the vllm backend; its settings: kind"
    ):
        backend_of({"kind": "vllm", "devise": "cuda"})


def test_in_python_too_a_wrong_key_names_the_kind() -> None:
    with pytest.raises(ValidationError, match="not a setting of the llamacpp backend"):
        BackendConfig(kind="llamacpp", device="cuda")  # type: ignore[call-arg]


def test_an_unknown_kind_is_an_error_listing_the_known_kinds() -> None:
    with pytest.raises(
        ConfigError, match=r"backends\.default\.kind: unknown backend kind 'llama'; known kinds: "
    ) as info:
        backend_of({"kind": "llama"})
    assert ", ".join(BUILT_IN) in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown backend kind 'llama'; known kinds: fake, llamacpp"):
        BackendConfig(kind="llama")


def test_values_are_still_checked_per_kind() -> None:
    with pytest.raises(ConfigError, match=r"backends\.default\.dtype: Input should be"):
        backend_of({"kind": "transformers", "dtype": "int3"})
    with pytest.raises(ConfigError, match=r"backends\.default\.context_length"):
        backend_of({"kind": "openai", "context_length": 1})


@pytest.mark.parametrize("kind", BUILT_IN)
def test_each_kind_round_trips_through_yaml_with_only_its_own_keys(kind: str, tmp_path: Path) -> None:
    config = PipelineConfig.from_dict({"backends": {"default": {"kind": kind}}, **PROMPTED})
    path = tmp_path / "c.yaml"
    config.save(path)
    dumped = yaml.safe_load(path.read_text(encoding="utf-8"))["backends"]["default"]
    assert list(dumped) == list(type(config.backends["default"]).model_fields)
    assert PipelineConfig.from_yaml(path) == config


def test_a_config_written_before_kinds_had_their_own_keys_still_loads() -> None:
    # the flat dump every earlier claimflow wrote (run stores, A/B specs, `claimflow config`)
    flat = {
        "kind": "llamacpp",
        "model": "smollm2-135m-instruct",
        "context_length": 2048,
        "threads": None,
        "seed": 0,
        "base_url": None,
        "api": "chat",
        "api_key_env": "OPENAI_API_KEY",
        "timeout_s": 60.0,
        "max_retries": 2,
        "top_logprobs": 20,
        "device": "cpu",
        "dtype": "float32",
    }
    assert backend_of(flat) == LlamaCppBackendConfig()
    served = backend_of({**flat, "kind": "openai", "base_url": "http://x/v1", "max_retries": 0})
    assert served == OpenAIBackendConfig(base_url="http://x/v1", max_retries=0)
    assert backend_of({**flat, "kind": "transformers", "dtype": "bfloat16"}) == TransformersBackendConfig(
        dtype="bfloat16"
    )


# --- the registry and its extension point ------------------------------------------------------


class EchoConfig(BackendConfig):
    kind: Literal["echo"] = "echo"
    prefix: str = ""


class EchoBackend(FakeBackend):
    """A fake answering every generation with its prefix and the model name."""

    def __init__(self, config: EchoConfig) -> None:
        super().__init__(config.model, generate_fn=lambda request: f"{config.prefix}{config.model}")
        self.config = config


def make_echo(config: EchoConfig, store: ModelStore) -> Backend:
    return EchoBackend(config)


@pytest.fixture
def echo() -> Iterator[None]:
    register_backend("echo", EchoConfig, make_echo)
    yield
    unregister_backend("echo")


def test_the_built_in_kinds_are_registered() -> None:
    assert set(BUILT_IN) <= set(registered_backends())
    assert set(BUILT_IN) <= set(backend_kinds())


@pytest.mark.usefixtures("echo")
def test_a_registered_kind_is_validated_built_and_round_trips(tmp_path: Path) -> None:
    config = PipelineConfig.from_dict(
        {"backends": {"default": {"kind": "echo", "model": "parrot", "prefix": ">"}}, **PROMPTED}
    )
    echo_config = config.backends["default"]
    assert echo_config == EchoConfig(model="parrot", prefix=">")
    assert BackendConfig(kind="echo", prefix=">", model="parrot") == echo_config  # type: ignore[call-arg]
    assert "echo" in registered_backends()

    backend = make_backend(echo_config, ModelStore())
    assert isinstance(backend, EchoBackend)
    assert backend.config is echo_config

    path = tmp_path / "c.yaml"
    config.save(path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["backends"]["default"]["prefix"] == ">"
    assert PipelineConfig.from_yaml(path) == config

    with pytest.raises(ConfigError, match=r"backends\.default\.device: not a setting of the echo backend"):
        backend_of({"kind": "echo", "device": "cuda"})


@pytest.mark.usefixtures("echo")
def test_a_verifier_builds_a_registered_kind_through_the_registry() -> None:
    config = PipelineConfig.from_dict({"backends": {"default": {"kind": "echo"}}, **PROMPTED})
    verifier = Verifier(config)
    assert isinstance(verifier.components.backend("default"), EchoBackend)
    result = verifier.verify("The moon is made of cheese.", ["Apollo samples are basalt and breccia."], force=True)
    assert result.justifications is not None


def test_an_unregistered_kind_is_unknown_again() -> None:
    register_backend("echo", EchoConfig, make_echo)
    register_backend("echo", EchoConfig, make_echo)  # the same pair again: a no-op
    unregister_backend("echo")
    assert "echo" not in backend_kinds()
    with pytest.raises(ConfigError, match="unknown backend kind 'echo'"):
        backend_of({"kind": "echo"})


def test_registration_mistakes_are_errors_saying_what_to_do() -> None:
    class Unrelated:
        kind = "mine"

    class WrongDefault(BackendConfig):
        kind: Literal["other"] = "other"

    with pytest.raises(ConfigError, match=r"must subclass claimflow\.config\.BackendConfig"):
        register_backend("mine", Unrelated, make_echo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must subclass"):
        register_backend("mine", BackendConfig, make_echo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"WrongDefault\.kind must default to 'mine'"):
        register_backend("mine", WrongDefault, make_echo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="factory must be callable"):
        register_backend("mine", EchoConfig, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="use letters"):
        register_backend("", EchoConfig, make_echo)
    with pytest.raises(ConfigError, match="'llamacpp' is built in; register yours under another kind"):
        register_backend("llamacpp", LlamaCppBackendConfig, make_echo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'fake' is built in and cannot be removed"):
        unregister_backend("fake")
    assert "mine" not in backend_kinds()


@pytest.mark.usefixtures("echo")
def test_a_second_registration_of_a_kind_needs_the_first_removed() -> None:
    class OtherEcho(BackendConfig):
        kind: Literal["echo"] = "echo"

    for factory in (make_echo, lambda config, store: FakeBackend()):
        with pytest.raises(ConfigError, match=r"'echo' is already registered \(EchoConfig\); unregister_backend"):
            register_backend("echo", OtherEcho, factory)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"'echo' is already registered"):
        register_backend("echo", EchoConfig, lambda config, store: FakeBackend())


def test_make_backend_refuses_a_config_of_another_class() -> None:
    class Impostor(BackendConfig):
        kind: Literal["fake"] = "fake"

    with pytest.raises(ConfigError, match="a fake backend needs a FakeBackendConfig, got Impostor"):
        make_backend(Impostor(), ModelStore())


def test_a_kind_without_a_factory_is_unavailable() -> None:
    from claimflow.config import register_backend_config, unregister_backend_config

    register_backend_config("echo", EchoConfig)
    try:
        with pytest.raises(
            BackendUnavailableError, match=r"no factory: register it with claimflow\.llm\.register_backend"
        ):
            make_backend(EchoConfig(), ModelStore())
    finally:
        unregister_backend_config("echo")

"""A transformers backend on a device this torch cannot use fails at construction, naming the
setting, before any model is loaded (torch alone would fail later with an assertion about its build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.errors import BackendUnavailableError, ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from claimflow.llm.transformers_backend import TransformersBackend, check_device  # noqa: E402


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize(("device", "needs"), [("cuda", "CUDA"), ("cuda:0", "CUDA"), ("mps", "MPS")])
def test_an_unavailable_device_is_a_clear_error_before_loading(tmp_path: Path, device: str, needs: str) -> None:
    missing = tmp_path / "no-model-here"  # never reached: the device is checked first
    with pytest.raises(BackendUnavailableError, match=rf"device '{device}' needs .*{needs}.*set device: cpu"):
        TransformersBackend(str(missing), device=device)


def test_a_device_index_beyond_the_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device(torch, "cuda:0")
    with pytest.raises(BackendUnavailableError, match=r"'cuda:3': only 1 CUDA device"):
        check_device(torch, "cuda:3")


@pytest.mark.usefixtures("no_gpu")
def test_a_misspelt_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="device 'gpu' is not a torch device"):
        check_device(torch, "gpu")


@pytest.mark.usefixtures("no_gpu")
def test_cpu_is_always_fine() -> None:
    check_device(torch, "cpu")

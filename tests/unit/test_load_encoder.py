"""predictors.trained.load_encoder: the runtime a pipeline's encoders run on (``encoders.runtime``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.predictors.trained import load_encoder


class Encoder:
    """Stands in for an encoder predictor class: ONNX Runtime fails with ``onnx_error`` (if any)."""

    onnx_error: ClassVar[Exception | None] = None
    built: ClassVar[list[str]] = []

    def __init__(self, artifact: Path, *, store: Any = None, runtime: str = "torch", quantize: str = "none") -> None:
        if runtime == "onnx" and self.onnx_error is not None:
            raise self.onnx_error
        self.runtime, self.quantize = runtime, quantize
        Encoder.built.append(runtime)


@pytest.fixture(autouse=True)
def _reset() -> None:
    Encoder.onnx_error, Encoder.built = None, []


def test_auto_and_onnx_run_on_onnx_runtime_with_the_quantisation() -> None:
    for runtime in ("auto", "onnx"):
        model = load_encoder(Encoder, Path("a"), runtime=runtime, quantize="int8")  # type: ignore[type-var]
        assert (model.runtime, model.quantize) == ("onnx", "int8")


def test_auto_falls_back_to_torch_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    Encoder.onnx_error = BackendUnavailableError("no onnxruntime")
    with caplog.at_level(logging.INFO, logger="claimflow.predictors.trained"):
        model = load_encoder(Encoder, Path("cw"), runtime="auto")  # type: ignore[type-var]
    assert model.runtime == "torch" and Encoder.built == ["torch"]
    assert "cw runs on torch" in caplog.text and "no onnxruntime" in caplog.text


def test_onnx_asked_for_explicitly_is_an_error_when_it_cannot_run() -> None:
    Encoder.onnx_error = ModelError("cannot export the encoder to ONNX: unsupported op")
    with pytest.raises(ModelError, match="unsupported op"):
        load_encoder(Encoder, Path("cw"), runtime="onnx")  # type: ignore[type-var]
    assert Encoder.built == []


def test_torch_never_tries_onnx() -> None:
    Encoder.onnx_error = AssertionError("not to be called")
    model = load_encoder(Encoder, Path("cw"), runtime="torch")  # type: ignore[type-var]
    assert model.runtime == "torch"

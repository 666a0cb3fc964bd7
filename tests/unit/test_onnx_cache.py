"""The ONNX graph cache (predictors.onnx_runtime.onnx_graph) without a real model: where it writes, and
what an unwritable cache gives (a ModelError, so ``encoders.runtime: auto`` falls back to torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.errors import ModelError
from claimflow.models.store import ModelStore
from claimflow.predictors.onnx_runtime import onnx_graph


def _artifact(tmp_path: Path) -> Path:
    artifact = tmp_path / "my-encoder"
    artifact.mkdir()
    (artifact / "provenance.json").write_text("{}", encoding="utf-8")
    return artifact


def test_an_unwritable_cache_is_a_model_error_and_leaves_nothing(tmp_path: Path) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    calls: list[Path] = []
    with pytest.raises(ModelError, match="cannot write the ONNX graph of my-encoder"):
        onnx_graph(
            _artifact(tmp_path), base_weights=None, quantize="none", store=ModelStore(blocked), export=calls.append
        )
    assert calls == []


def test_a_failed_export_leaves_no_partial_file(tmp_path: Path) -> None:
    def export(path: Path) -> None:
        path.write_bytes(b"half a graph")
        raise ModelError("cannot export the encoder to ONNX: unsupported op")

    with pytest.raises(ModelError, match="unsupported op"):
        onnx_graph(
            _artifact(tmp_path), base_weights=None, quantize="none", store=ModelStore(tmp_path / "c"), export=export
        )
    assert list((tmp_path / "c" / "onnx").iterdir()) == []

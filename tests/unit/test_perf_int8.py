"""int8 dynamic quantisation of a loaded encoder predictor (predictors.trained.quantize_int8)."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from claimflow.predictors.encoder import EncoderClassifier  # noqa: E402
from claimflow.predictors.multitask import MultitaskEncoder, TaskHead  # noqa: E402
from claimflow.predictors.trained import quantize_int8  # noqa: E402


def tiny() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)).eval()


def test_the_linear_layers_become_int8_and_the_outputs_stay_close() -> None:
    classifier = object.__new__(EncoderClassifier)  # the loaded state only: no artifact needed
    classifier.model, classifier.prefetched = tiny(), {("a claim",): [0.5, 0.5]}
    x = torch.randn(8, 16)
    before = classifier.model(x)
    quantize_int8(classifier)
    kinds = {type(m).__name__ for m in classifier.model.modules()}
    assert "Linear" in kinds and not any(isinstance(m, torch.nn.Linear) for m in classifier.model.modules())
    assert torch.allclose(classifier.model(x), before, atol=0.05)
    assert classifier.prefetched == {}  # scores of the fp32 model are not served any more
    assert classifier.quantization == "int8"  # named in the stage provenance


def test_a_task_head_quantises_its_shared_encoder() -> None:
    encoder = object.__new__(MultitaskEncoder)
    encoder.model, encoder.prefetched = tiny(), {}
    head = object.__new__(TaskHead)
    head.encoder = encoder
    quantize_int8(head)
    assert not any(isinstance(m, torch.nn.Linear) for m in encoder.model.modules())


def test_an_onnx_backed_predictor_is_quantised_at_load_not_here() -> None:
    from pathlib import Path

    from claimflow.errors import ModelError

    encoder = object.__new__(MultitaskEncoder)
    encoder.graph, encoder.artifact, encoder.model = object(), Path("evidence-multitask"), None
    with pytest.raises(ModelError, match="quantize='int8'"):
        quantize_int8(encoder)

"""The shipped LoRA encoder classifiers merged into MiniLM's weights without PEFT: the same
probabilities as the PeftModel, PEFT left unimported, and non-plain adapters left to PEFT."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the encoder classifiers need torch (pip install 'claimflow[local]')")

from claimflow.errors import ModelError
from claimflow.predictors import lora_merge
from claimflow.predictors.encoder import EncoderClassifier

ARTIFACTS = Path(__file__).resolve().parents[2] / "src" / "claimflow" / "artifacts"
SHIPPED = ["checkworthiness-encoder", "veracity-encoder"]
TEXTS = ["The deficit doubled in four years, and masks cut the spread by half.", "Thank you all for coming."]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_merged_adapter_gives_the_peft_models_probabilities(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    merged = EncoderClassifier(ARTIFACTS / name)
    assert type(merged.model).__name__ == "BertForSequenceClassification"
    monkeypatch.setattr(lora_merge, "mergeable", lambda artifact: False)
    wrapped = EncoderClassifier(ARTIFACTS / name)
    assert type(wrapped.model).__name__.startswith("PeftModel")
    inputs = [{field: text for field in merged.inputs} for text in TEXTS]
    for a, b in zip(merged.predict(inputs), wrapped.predict(inputs), strict=True):
        assert a.label == b.label
        for label, p in a.probabilities.items():
            assert p == pytest.approx(b.probabilities[label], abs=1e-5)


def test_the_default_check_worthiness_stage_never_imports_peft() -> None:
    code = (
        "import sys\nfrom claimflow import PipelineConfig, Verifier\n"
        "with Verifier(PipelineConfig.from_dict({'stages': ['check_worthiness']})) as v:\n"
        "    v.verify('The deficit doubled in four years.')\n"
        "print('peft' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_an_adapter_beyond_plain_lora_goes_to_peft_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "cw"
    shutil.copytree(ARTIFACTS / "checkworthiness-encoder", artifact)
    config_path = artifact / "adapter_config.json"
    config = json.loads(config_path.read_text())
    assert lora_merge.mergeable(artifact)
    for key, value in [("use_dora", True), ("rank_pattern", {"query": 4}), ("bias", "all")]:
        config_path.write_text(json.dumps({**config, key: value}))
        assert not lora_merge.mergeable(artifact), key
    config_path.write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(artifact / "adapter_model.safetensors"))
    key = next(k for k in tensors if k.endswith("query.lora_A.weight"))
    tensors[key] = tensors[key][:, :100].contiguous()  # a LoRA made for another width
    save_file(tensors, str(artifact / "adapter_model.safetensors"))
    with pytest.raises(ModelError, match="cannot apply the LoRA adapter"):
        EncoderClassifier(artifact)

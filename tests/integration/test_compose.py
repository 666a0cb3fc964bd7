"""LoRA composition on the real SmolLM2 (issue #14): each method trains a few steps on fixture data,
saves, resumes, refuses a foreign base and predicts through the graph (`veracity.predictor: lora`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two small LoRAs on SmolLM2 (q/v, r=4) with random B: stand-ins for trained reasoning LoRAs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from claimflow.models.convert import hf_checkpoint
    from claimflow.models.store import ModelStore

    store = ModelStore()
    folder = hf_checkpoint(store.resolve("smollm2-135m-instruct"), store)
    root = tmp_path_factory.mktemp("sources")
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
            LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.01)
        model.save_pretrained(str(root / f"lora{i}"))
        paths.append(root / f"lora{i}")
    return paths


def _config(tmp_path: Path, method: str, sources: list[Path]):  # type: ignore[no-untyped-def]
    from claimflow.finetune.compose import ComposeConfig

    return ComposeConfig.model_validate(
        {
            "output_dir": tmp_path / method,
            "method": method,
            "sources": sources,
            "map_dim": 4,
            "max_input_tokens": 96,
            "data": {"dataset": "covidfact", "data_dir": FIXTURE_DATA, "dev_split": "train"},
            "hub": {"shots": 2, "budget": 4, "dump_every": 2},
            "training": {"batch_size": 2, "max_steps": 2, "eval_every": 2, "checkpoint_every": 1},
        }
    )


@pytest.mark.parametrize("method", ["lorahub", "loraconcat", "loramap"])
def test_each_composition_trains_saves_resumes_and_predicts_through_the_graph(
    tmp_path: Path, sources: list[Path], method: str
) -> None:
    from claimflow import PipelineConfig, Verifier
    from claimflow.errors import ModelError
    from claimflow.finetune.compose import ComposeTrainer
    from claimflow.predictors.composed_lora import ComposedLoraClassifier

    config = _config(tmp_path, method, sources)
    summary = ComposeTrainer(config).train()
    assert summary["resumed"] is False
    best = tmp_path / method / "best"
    provenance = json.loads((best / "provenance.json").read_text())
    assert provenance["kind"] == "composed_lora" and provenance["method"] == method
    assert [s["sha256"] for s in provenance["sources"]] and provenance["base_model"]["sha256"]
    expected = {"lorahub": 2 * 30, "loramap": 60 * 2 * 8 * 4}[method] if method != "loraconcat" else None
    if expected is not None:  # LoraHub: 2 coefficients x 30 blocks; LoraMap: 60 modules x 2 x 3r(=8) x m
        assert provenance["trainable_parameters"] == expected

    again = ComposeTrainer(config).train()  # finished: a rerun resumes at its end
    assert again["resumed"] is True
    # the time trained before is kept (LoraHub's search time once restarted at 0 on a resume)
    assert again["train_seconds"] > 0 and again["train_seconds"] >= summary["train_seconds"] - 0.2

    claim = "Rapid clinical deterioration of severe covid-19 may be associated with stroke"
    evidence = ["Severe COVID-19 could be associated with a neurologic event such as stroke."]
    direct = ComposedLoraClassifier(best).predict([{"claim": claim, "evidence": evidence}])[0]
    pipeline = PipelineConfig.model_validate({"veracity": {"predictor": "lora", "lora": str(best)}}).with_stages(
        ("veracity",)
    )
    with Verifier(pipeline) as verifier:
        result = verifier.verify(claim, evidence)
    assert result.veracity is not None and result.veracity.label in ("SUPPORTED", "REFUTED")
    assert result.veracity.probabilities == pytest.approx(direct.probabilities, abs=1e-5)

    tampered = json.loads((best / "provenance.json").read_text())
    tampered["base_model"]["sha256"] = "0" * 64
    (best / "provenance.json").write_text(json.dumps(tampered))
    with pytest.raises(ModelError, match="trained on"):
        ComposedLoraClassifier(best)

"""Prompt tuning on the real SmolLM2 (a few steps on fixture data): the artifact loads into the
graph, and a run killed with SIGKILL resumes from its checkpoint without redoing steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.integration.sigkill import kill_and_resume_training

pytestmark = pytest.mark.slow
FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def _config(tmp: Path, steps: int, checkpoint_every: int = 2) -> Path:
    path = tmp / "pt.yaml"
    path.write_text(
        f"output_dir: {tmp / 'out'}\n"
        f"data: {{data_dir: {FIXTURE_DATA}, test_split: dev-test}}\n"
        f"max_steps: {steps}\neval_every: 4\ncheckpoint_every: {checkpoint_every}\nbatch_size: 2\n"
        "num_virtual_tokens: 8\npatience: 50\n",
        encoding="utf-8",
    )
    return path


def test_a_trained_soft_prompt_drives_the_check_worthiness_node(tmp_path: Path) -> None:
    from claimflow import PipelineConfig, Verifier
    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig

    cfg = PromptTuningConfig.from_yaml(_config(tmp_path, steps=4))
    summary = PromptTuner(cfg).train()
    assert summary["steps"] == 4 and summary["best_step"] in (4,)
    artifact = tmp_path / "out" / "best"
    provenance = json.loads((artifact / "provenance.json").read_text())
    assert provenance["template"].startswith("checkworthiness_short@1#")
    assert provenance["base_model"]["sha256"]
    assert (artifact / "adapter_model.safetensors").stat().st_size < 200_000  # tiny: 8 x 576 floats

    config = PipelineConfig.from_dict(
        {"check_worthiness": {"predictor": "soft_prompt", "soft_prompt": str(artifact)}, "stages": ["check_worthiness"]}
    )
    with Verifier(config) as verifier:
        result = verifier.verify("The deficit doubled in four years.")
    assert result.check_worthiness is not None
    assert sum(result.check_worthiness.probabilities.values()) == pytest.approx(1.0)
    assert "+softprompt:best#" in result.provenance.prompts["check_worthiness"]
    assert result.provenance.model_calls["check_worthiness"] == 1


def test_sigkill_during_training_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    config = _config(tmp_path, steps=14)
    command = [sys.executable, "-m", "claimflow.cli", "finetune", "prompt-tuning", "--config", str(config)]
    result = kill_and_resume_training(command, tmp_path / "out", steps=14)
    assert "test" in result and 0.0 <= result["test"]["f1"] <= 1.0


def test_prompt_embeds_reproduce_the_soft_prompt_on_the_plain_base_model(tmp_path: Path) -> None:
    """The serving recipe for engines with prompt-embedding inputs (vLLM prompt_embeds)."""
    import torch

    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig
    from claimflow.predictors.soft_prompt import SoftPromptClassifier

    PromptTuner(PromptTuningConfig.from_yaml(_config(tmp_path, steps=2))).train()
    classifier = SoftPromptClassifier(tmp_path / "out" / "best")
    claim = {"claim": "Crime fell by 20 percent in our city."}
    embeds = classifier.prompt_embeds(claim)
    base = classifier.model.get_base_model()
    with torch.inference_mode():
        logits = base(inputs_embeds=embeds.unsqueeze(0)).logits[0, -1, classifier.codec.label_token_ids]
    p_yes = float(torch.softmax(logits, dim=-1)[0])
    assert p_yes == pytest.approx(classifier.positive_probabilities([claim])[0], abs=1e-4)


def test_the_shipped_soft_prompt_loads_and_classifies() -> None:
    from claimflow import PipelineConfig, Verifier

    config = PipelineConfig.from_dict(
        {"check_worthiness": {"predictor": "soft_prompt"}, "stages": ["check_worthiness"]}
    )
    with Verifier(config) as verifier:
        result = verifier.verify("The unemployment rate fell to 3.5 percent last year.")
    assert result.check_worthiness is not None and result.check_worthiness.label in {"Yes", "No"}
    assert "+softprompt:checkworthiness-softprompt#" in result.provenance.prompts["check_worthiness"]

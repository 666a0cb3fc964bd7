"""LoRA on the real SmolLM2 for veracity, CLM and CLS heads: a few steps on fixture data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


@pytest.mark.parametrize("head", ["clm", "cls"])
def test_both_heads_train_save_and_predict(tmp_path: Path, head: str) -> None:
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraTrainer

    lines = [
        {"id": "covidfact-train-0", "support_justification": "It supports.", "refute_justification": ""},
        {"id": "covidfact-train-1", "support_justification": "", "refute_justification": "It refutes."},
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    config = CausalLoraConfig.model_validate(
        {
            "output_dir": tmp_path / "out",
            "head": head,
            "max_input_tokens": 48,
            "data": {
                "dataset": "covidfact",
                "data_dir": FIXTURE_DATA,
                "train_file": train,
                "dev_split": "train",
                "dev_file": train,
            },
            "training": {"batch_size": 2, "max_steps": 2, "eval_every": 2, "checkpoint_every": 1},
        }
    )
    trainer = CausalLoraTrainer(config)
    summary = trainer.train()
    assert summary["steps"] == 2 and summary["label_counts"] == {"SUPPORTED": 1, "REFUTED": 1}
    best = tmp_path / "out" / "best"
    provenance = json.loads((best / "provenance.json").read_text())
    assert provenance["head"] == head and provenance["template"].startswith("veracity_justifications@1#")
    assert (best / "adapter_model.safetensors").stat().st_size < 5_000_000
    scored = trainer.evaluate_best("train", train)
    assert scored["n"] == 2 and set(scored["predictions"]) <= {"SUPPORTED", "REFUTED"}
    # the adapter changed the model: a second run resumes at its end without training again
    again = CausalLoraTrainer(config).train()
    assert again["resumed"] is True and again["steps"] == 2

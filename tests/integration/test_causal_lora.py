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


def test_stance_pairs_train_the_cls_head_on_claim_sentence_pairs(tmp_path: Path) -> None:
    from claimflow.errors import InputError
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraModel, CausalLoraTrainer, pair_rows

    config = CausalLoraConfig.model_validate(
        {
            "output_dir": tmp_path / "out",
            "head": "cls",
            "template": "evidence_stance_3way@1",
            "max_input_tokens": 48,
            "stance_pairs": {
                "data_dir": FIXTURE_DATA,
                "stance_sources": ["healthver", "scifact", "climate_fever"],
                "dev_fraction": 0.5,
            },
            "training": {
                "batch_size": 2,
                "max_steps": 2,
                "eval_every": 2,
                "checkpoint_every": 1,
                "warmup_steps": 0,
                "learning_rate": 5e-3,
            },
        }
    )
    trainer = CausalLoraTrainer(config)
    row_id, fields, label = trainer.train_rows[0]
    assert set(fields) == {"claim", "sentence"} and label in {"SUPPORT", "REFUTE", "NEUTRAL"} and row_id
    summary = trainer.train()
    assert summary["steps"] == 2 and summary["dev_size"] == len(trainer.dev_rows) > 0
    provenance = json.loads((tmp_path / "out" / "best" / "provenance.json").read_text())
    held = provenance["data"]["held_out_claims"]["healthver"]
    trained_claims = {row[0].split(":")[1] for row in trainer.train_rows if row[0].startswith("healthver:")}
    assert held and not set(held) & trained_claims
    assert pair_rows([]) == []
    net = trainer.load_best()
    probs = net.predict(net.encode(trainer.dev_rows), 4)
    assert len(probs) == len(trainer.dev_rows) and all(abs(sum(p) - 1) < 1e-4 for p in probs)
    # a fresh model with the saved adapter and CLS head predicts the same (what the benchmark loads)
    fresh = CausalLoraModel(config, provenance["labels"])
    untrained = fresh.predict(fresh.encode(trainer.dev_rows), 4)
    assert max(abs(a - b) for p, q in zip(probs, untrained, strict=True) for a, b in zip(p, q, strict=True)) > 1e-4
    fresh.load_adapter(tmp_path / "out" / "best")
    again = fresh.predict(fresh.encode(trainer.dev_rows), 4)
    assert all(abs(a - b) < 1e-5 for p, q in zip(probs, again, strict=True) for a, b in zip(p, q, strict=True))
    with pytest.raises(InputError, match="stance-pairs run"):
        trainer.evaluate_best("dev", None)

"""Encoder classifier on the real MiniLM-L6 (a few steps on fixture data): field encoding, full and
LoRA training, the artifact driving the graph's veracity node, and resume after SIGKILL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.conftest import keyword_scorer
from tests.integration.sigkill import kill_and_resume_training

from claimflow import PipelineConfig, Verifier
from claimflow.errors import GraphBuildError
from claimflow.llm.fake import FakeBackend

pytestmark = pytest.mark.slow
FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"
SUPPORT = "The lab study shows masks cut droplet spread, which supports the claim."
REFUTE = "The study found the opposite of an increase, so the evidence refutes the claim."


def _distilled(tmp: Path) -> tuple[Path, Path]:
    train, dev = tmp / "train.jsonl", tmp / "dev.jsonl"
    rows = {
        train: ["covidfact-train-0", "covidfact-train-1"],
        dev: ["covidfact-dev-0"],
    }
    for path, ids in rows.items():
        lines = [
            {
                "id": i,
                "support_justification": SUPPORT,
                "refute_justification": REFUTE if n else "",
                "stances": ["SUPPORT" if n else "REFUTE"],
                "stance_probabilities": [{"SUPPORT": 0.1 + 0.7 * n, "REFUTE": 0.8 - 0.7 * n, "NEUTRAL": 0.1}],
                "relevance": [0.9],
            }
            for n, i in enumerate(ids)
        ]
        lines.append({"id": "elsewhere", "error": {"type": "InputError", "message": "skipped"}})
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return train, dev


def _config(
    tmp: Path,
    *,
    mode: str = "full",
    steps: int = 4,
    inputs: str = "[claim, support_justification, refute_justification]",
) -> Path:
    train, dev = _distilled(tmp)
    path = tmp / "classifier.yaml"
    path.write_text(
        f"output_dir: {tmp / 'out'}\nmode: {mode}\ninputs: {inputs}\nmax_length: 64\n"
        f"data: {{dataset: covidfact, data_dir: {FIXTURE_DATA}, train_file: {train}, dev_file: {dev}}}\n"
        f"training: {{batch_size: 2, max_steps: {steps}, eval_every: 2, checkpoint_every: 1, patience: 50, "
        "learning_rate: 1.0e-4, warmup_steps: 1}\n",
        encoding="utf-8",
    )
    return path


def test_fields_share_the_length_budget_with_the_tokenizers_separators() -> None:
    from transformers import AutoTokenizer

    from claimflow.models.store import ModelStore
    from claimflow.predictors.encoder import FieldEncoder

    tokenizer = AutoTokenizer.from_pretrained(ModelStore().resolve("minilm-l6").location)
    encoder = FieldEncoder(tokenizer, ["claim", "support_justification", "refute_justification"], 48)
    values = {"claim": "Masks work.", "support_justification": "yes " * 200, "refute_justification": "no " * 200}
    batch = encoder.batch([values])
    ids = batch["input_ids"][0].tolist()
    assert len(ids) == 48
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 3 and tokens[-1] == "[SEP]"
    # 48 - [CLS] - 3 [SEP] = 44 tokens; the claim's 3 are kept whole, the two sides share the other 41
    assert tokens[1:4] == ["masks", "work", "."]
    assert (tokens.count("yes"), tokens.count("no")) == (21, 20)
    types = batch["token_type_ids"][0].tolist()
    assert types[: tokens.index("[SEP]") + 1] == [0] * (tokens.index("[SEP]") + 1) and types[-1] == 1


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_a_trained_encoder_drives_the_veracity_node(tmp_path: Path, mode: str) -> None:
    from claimflow.finetune.classifier import ClassifierConfig, ClassifierTrainer

    summary = ClassifierTrainer(ClassifierConfig.from_yaml(_config(tmp_path, mode=mode))).train()
    assert summary["steps"] == 4 and summary["train_size"] == 2 and summary["dev_size"] == 1
    artifact = tmp_path / "out" / "best"
    provenance = json.loads((artifact / "provenance.json").read_text())
    assert provenance["labels"] == ["SUPPORTED", "REFUTED"] and provenance["mode"] == mode
    if mode == "lora":
        assert (artifact / "adapter_model.safetensors").stat().st_size < 2_000_000  # adapter + head only

    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "Generated justification.")
    config = PipelineConfig.from_dict({"veracity": {"predictor": "encoder", "encoder": str(artifact)}})
    with Verifier(config, backends={"default": fake}) as verifier:
        result = verifier.verify("Masks reduce droplet spread.", ["A lab study found masks cut droplet spread."])
    assert result.veracity is not None and result.veracity.label in {"SUPPORTED", "REFUTED"}
    assert sum(result.veracity.probabilities.values()) == pytest.approx(1.0)
    assert result.provenance.prompts["veracity"].startswith("encoder:best#")
    assert result.provenance.model_calls["veracity"] == 1
    assert not any("Claim Veracity" in (r.assistant_prefix or "") for r in fake.score_requests)


def test_an_encoder_reading_the_stance_summary_learns_it_from_distilled_rows_and_gets_it_in_verify(
    tmp_path: Path,
) -> None:
    from claimflow.finetune.classifier import ClassifierConfig, ClassifierTrainer

    inputs = "[claim, refute_justification, stance_summary]"
    summary = ClassifierTrainer(ClassifierConfig.from_yaml(_config(tmp_path, steps=2, inputs=inputs))).train()
    assert summary["steps"] == 2
    artifact = tmp_path / "out" / "best"
    assert json.loads((artifact / "provenance.json").read_text())["inputs"] == [
        "claim",
        "refute_justification",
        "stance_summary",
    ]
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "Generated justification.")
    config = PipelineConfig.from_dict({"veracity": {"predictor": "encoder", "encoder": str(artifact)}})
    with Verifier(config, backends={"default": fake}) as verifier:
        result = verifier.verify("Masks reduce droplet spread.", ["A lab study found masks cut droplet spread."])
    assert result.veracity is not None and result.veracity.label in {"SUPPORTED", "REFUTED"}
    without_stances = PipelineConfig.from_dict(
        {"stages": ["veracity"], "veracity": {"predictor": "encoder", "encoder": str(artifact)}}
    )
    with pytest.raises(GraphBuildError, match="comes from stage 'evidence_stance'"):
        Verifier(without_stances, backends={"default": fake})


def test_an_encoder_that_reads_justifications_needs_the_justify_stage(tmp_path: Path) -> None:
    from claimflow.finetune.classifier import ClassifierConfig, ClassifierTrainer

    ClassifierTrainer(ClassifierConfig.from_yaml(_config(tmp_path, steps=2))).train()
    config = PipelineConfig.from_dict(
        {
            "stages": ["evidence_stance", "veracity"],
            "veracity": {"predictor": "encoder", "encoder": str(tmp_path / "out" / "best")},
        }
    )
    with pytest.raises(GraphBuildError, match="justify"):
        Verifier(config, backends={"default": FakeBackend()})


def test_sigkill_during_training_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    config = _config(tmp_path, steps=30, inputs="[claim, evidence]")
    command = [
        sys.executable,
        "-m",
        "claimflow.cli",
        "finetune",
        "classifier",
        "--config",
        str(config),
        "--evaluate-on",
        "dev",
    ]
    result = kill_and_resume_training(command, tmp_path / "out", steps=30)
    assert result["dev"]["n"] == 1 and 0.0 <= result["dev"]["value"] <= 1.0


def test_the_shipped_check_worthiness_encoder_separates_claims_from_pleasantries() -> None:
    config = PipelineConfig.from_dict({"stages": ["check_worthiness"]})
    with Verifier(config) as verifier:
        claim = verifier.verify("The unemployment rate fell to 3.5 percent last year, the lowest in fifty years.")
        thanks = verifier.verify("Thank you all so much for being here tonight.")
    assert claim.check_worthiness is not None and thanks.check_worthiness is not None
    assert claim.check_worthiness.label == "Yes" and thanks.check_worthiness.label == "No"
    assert claim.provenance.prompts["check_worthiness"].startswith("encoder:checkworthiness-encoder#")
    assert claim.status == "partial" and thanks.status == "not_check_worthy"


def test_a_classifier_started_from_the_evidence_model_mixes_sources_and_reloads(tmp_path: Path) -> None:
    """init_from overlays the shipped evidence model's encoder; extra sources join training (ids prefixed);
    the LoRA artifact reloads on that encoder and predicts what the trainer's model did."""
    import torch
    from safetensors.torch import load_file

    from claimflow.evals.datasets import load_dataset
    from claimflow.finetune.classifier import ClassifierConfig, ClassifierTrainer
    from claimflow.finetune.ranked_evidence import write_ranked
    from claimflow.graphs.components import shipped_artifact
    from claimflow.predictors.encoder import ENCODER_DELTA, EncoderClassifier
    from claimflow.predictors.multitask import MultitaskEncoder

    evidence_model = shipped_artifact("evidence-multitask")
    ranked = tmp_path / "scifact-train.jsonl"
    examples = load_dataset("scifact", "train", FIXTURE_DATA)
    assert write_ranked(examples, MultitaskEncoder(evidence_model), ranked) == len(examples)
    # resumes: nothing redone (and a str path loads as a Path does)
    assert write_ranked(examples, MultitaskEncoder(str(evidence_model)), ranked) == 0
    line = json.loads(ranked.read_text(encoding="utf-8").splitlines()[0])
    assert line["relevance"] == sorted(line["relevance"], reverse=True) and "label" not in line

    config = ClassifierConfig.model_validate(
        {
            "output_dir": str(tmp_path / "out"),
            "mode": "lora",
            "init_from": str(evidence_model),
            "inputs": ["claim", "evidence"],
            "max_length": 96,
            "data": {
                "dataset": "covidfact",
                "data_dir": str(FIXTURE_DATA),
                "extra_train": [{"dataset": "scifact", "split": "train", "file": str(ranked)}],
            },
            "training": {"batch_size": 2, "max_steps": 2, "eval_every": 2, "checkpoint_every": 1, "patience": 5},
        }
    )
    trainer = ClassifierTrainer(config)
    delta = load_file(str(evidence_model / ENCODER_DELTA))
    name = "encoder.layer.0.attention.self.query.weight"
    own = dict(trainer.model.base_model.model.base_model.named_parameters())
    assert torch.allclose(own[f"{name[: -len('weight')]}base_layer.weight"], delta[name].float())
    assert any(item_id.startswith("scifact:") for item_id, _, _ in trainer.train_rows)
    assert "NOT_ENOUGH_INFO" in trainer.labels or len(trainer.labels) == 2
    trainer.train()
    artifact = tmp_path / "out" / "best"
    assert json.loads((artifact / "provenance.json").read_text())["init_from"]["artifact"] == "evidence-multitask"
    inputs = [{"claim": "Masks reduce spread.", "evidence": ["A lab study found masks cut droplet spread."]}]
    trainer.model.eval()
    with torch.inference_mode():
        expected = torch.softmax(trainer.model(**trainer.encoder.batch(inputs)).logits, dim=-1)[0].tolist()
    got = EncoderClassifier(artifact).probabilities(inputs)[0]
    assert got == pytest.approx(expected, abs=1e-4)

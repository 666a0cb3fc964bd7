"""The multi-task evidence model on the real MiniLM-L6: a few training steps on fixture data, the
artifact driving the stance and check-worthiness stages (loaded once), resume after SIGKILL, and the
shipped model on the bundled example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import keyword_scorer
from tests.integration.sigkill import kill_and_resume_training

from claimflow import PipelineConfig, Verifier
from claimflow.errors import GraphBuildError, InputError
from claimflow.finetune.multitask_data import TaskExample
from claimflow.io import bundled_example
from claimflow.llm.fake import FakeBackend

pytestmark = pytest.mark.slow
FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def _config(
    tmp: Path,
    *,
    mode: str = "lora",
    steps: int = 4,
    schedule: str = "proportional",
    frozen: bool = False,
    eval_every: int = 2,
) -> Path:
    path = tmp / "multitask.yaml"
    path.write_text(
        f"output_dir: {tmp / 'out'}\nmode: {mode}\nmax_length: 64\nschedule: {schedule}\n"
        f"freeze_embeddings: {str(frozen).lower()}\n"
        f"data: {{data_dir: {FIXTURE_DATA}, stance_sources: [healthver, scifact, climate_fever, covidfact], "
        "dev_fraction: 0.5, dev_cap: 20}\n"
        f"training: {{batch_size: 4, eval_batch_size: 16, max_steps: {steps}, eval_every: {eval_every}, "
        "checkpoint_every: 1, "
        "patience: 50, learning_rate: 1.0e-3, warmup_steps: 1}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("mode", "schedule", "frozen"),
    [("lora", "ordered", False), ("full", "round_robin", False), ("full", "proportional", True)],
)
def test_a_trained_multitask_model_serves_stance_relevance_and_claims(
    tmp_path: Path, mode: str, schedule: str, frozen: bool
) -> None:
    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer

    config_file = _config(tmp_path, mode=mode, schedule=schedule, frozen=frozen, eval_every=4 if frozen else 2)
    trainer = MultitaskTrainer(MultitaskConfig.from_yaml(config_file))
    summary = trainer.train()
    assert summary["steps"] == 4 and set(summary["train_size"]) == {"stance", "relevance", "claim"}
    assert set(summary["best_dev"]["tasks"]) == {"stance", "relevance", "claim"}
    artifact = tmp_path / "out" / "best"
    provenance = json.loads((artifact / "provenance.json").read_text())
    assert provenance["kind"] == "multitask_encoder" and provenance["mode"] == mode
    assert provenance["labels"]["stance"] == ["SUPPORT", "REFUTE", "NEUTRAL"]
    assert provenance["data"]["held_out_claims"]["healthver"]
    if mode == "lora":
        assert (artifact / "adapter_model.safetensors").stat().st_size < 5_000_000
    if frozen:  # a compact full fine-tune: the trained tensors only, fp16, over the pinned base
        assert not (artifact / "model.safetensors").exists()
        assert (artifact / "encoder-delta.safetensors").stat().st_size < 25_000_000
        import torch

        from claimflow.predictors.multitask import MultitaskEncoder

        pairs = [("Masks reduce droplet spread.", "Masks cut droplet spread in a lab study.")]
        loaded = MultitaskEncoder(artifact).probabilities(["stance"], pairs)["stance"][0]
        trainer.model.eval()
        with torch.inference_mode():
            trained = trainer.predict("stance", [TaskExample("stance", pairs[0][0], pairs[0][1], "SUPPORT", "test")])[0]
        assert loaded == pytest.approx(trained, abs=0.02)  # one dev evaluation: the best step is the last

    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "Generated justification.")
    config = PipelineConfig.from_dict(
        {
            "check_worthiness": {"predictor": "multitask"},
            "evidence_stance": {"encoder": str(artifact), "max_evidence": 2},
            "veracity": {"predictor": "prompt"},
        }
    )
    evidence = ["Masks cut droplet spread in a lab study.", "It rained in Paris.", "Masks did not help at all."]
    with Verifier(config, backends={"default": fake}) as verifier:
        result = verifier.verify("Masks reduce droplet spread.", evidence, force=True)
        components = verifier.components
        assert len(components._multitask) == 1  # one model for both stages
    assert [s.index for s in result.evidence_stances] == [0, 1, 2]
    assert all(s.relevance is not None and 0.0 <= s.relevance <= 1.0 for s in result.evidence_stances)
    assert sum(s.used for s in result.evidence_stances) == 2
    assert result.check_worthiness is not None and result.check_worthiness.label in {"Yes", "No"}
    assert result.provenance.prompts["evidence_stance"].startswith("encoder:best#")
    assert result.provenance.model_calls["evidence_stance"] == 3
    assert result.provenance.forward_passes["evidence_stance"] == 1  # stance + relevance from one pass
    assert not any("Sentence to classify:" in r.messages[-1].content for r in fake.score_requests)


def test_a_warm_started_run_begins_where_the_shipped_model_is(tmp_path: Path) -> None:
    import torch

    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer
    from claimflow.predictors.multitask import MultitaskEncoder

    shipped = Path(__file__).resolve().parents[2] / "src" / "claimflow" / "artifacts" / "evidence-multitask"
    cfg = MultitaskConfig.from_yaml(_config(tmp_path, mode="full", frozen=True))
    trainer = MultitaskTrainer(cfg.model_copy(update={"init_from": shipped, "max_length": 128}))
    pair = ("Vitamin D prevents COVID-19.", "A trial of 6,200 adults found no reduction in infections.")
    expected = MultitaskEncoder(shipped).probabilities(["stance"], [pair])["stance"][0]
    trainer.model.eval()
    with torch.inference_mode():
        started = trainer.predict("stance", [TaskExample("stance", pair[0], pair[1], "REFUTE", "test")])[0]
    assert started == pytest.approx(expected, abs=0.01)
    with pytest.raises(InputError, match="not a multi-task artifact"):
        MultitaskTrainer(cfg.model_copy(update={"init_from": tmp_path}))


def test_a_stance_artifact_without_a_claim_head_cannot_serve_check_worthiness(tmp_path: Path) -> None:
    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer

    cfg = MultitaskConfig.from_yaml(_config(tmp_path, steps=2)).model_copy(update={"tasks": ("stance",)})
    MultitaskTrainer(cfg).train()
    config = PipelineConfig.from_dict(
        {
            "check_worthiness": {"predictor": "multitask", "multitask": str(tmp_path / "out" / "best")},
            "veracity": {"predictor": "prompt"},
        }
    )
    with pytest.raises(GraphBuildError, match="no claim head"):
        Verifier(config, backends={"default": FakeBackend()})


def test_sigkill_during_multitask_training_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    config = _config(tmp_path, steps=20)
    command = [sys.executable, "-m", "claimflow.cli", "finetune", "multitask", "--config", str(config)]
    kill_and_resume_training(command, tmp_path / "out", steps=20)


def test_the_shipped_evidence_model_labels_the_bundled_examples_refuting_evidence_refute() -> None:

    example = bundled_example()
    claim, evidence = example["claim"], example["evidence"]
    config = PipelineConfig.from_dict({"stages": ["evidence_stance"]})
    with Verifier(config) as verifier:
        result = verifier.verify(claim, evidence)
    labels = {s.text: s.label for s in result.evidence_stances}
    refuting = [t for t in evidence if "did not prevent" in t or "no reduction" in t]
    assert refuting and all(labels[t] == "REFUTE" for t in refuting), result.summary()
    assert result.provenance.prompts["evidence_stance"].startswith("encoder:evidence-multitask#")


def test_the_shipped_evidence_model_ranks_the_two_trials_first_and_drops_the_off_topic_sentence() -> None:
    example = bundled_example()
    config = PipelineConfig.from_dict({"stages": ["evidence_stance"], "evidence_stance": {"max_evidence": 3}})
    with Verifier(config) as verifier:
        result = verifier.verify(example["claim"], example["evidence"])
    ranked = sorted(result.evidence_stances, key=lambda s: -(s.relevance or 0.0))
    assert {("no reduction" in s.text or "meta-analysis" in s.text) for s in ranked[:2]} == {True}, result.summary()
    sunlight = next(s for s in result.evidence_stances if "sunlight" in s.text)
    assert not sunlight.used
    assert result.provenance.prompts["evidence_stance"].startswith("encoder:evidence-multitask#")


@pytest.mark.parametrize("predictor", ["stance_features", "aggregate"])
def test_verify_says_not_enough_info_for_a_claim_with_only_irrelevant_evidence(predictor: str) -> None:
    config = PipelineConfig.from_dict({"stages": ["evidence_stance", "veracity"], "veracity": {"predictor": predictor}})
    evidence = [
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Honey bees communicate the location of flowers with a waggle dance.",
        "The 2018 World Cup final was played in Moscow.",
    ]
    with Verifier(config) as verifier:
        off_topic = verifier.verify("Vitamin D supplements prevent COVID-19 infection in adults.", evidence)
        example = bundled_example()
        on_topic = verifier.verify(example["claim"], example["evidence"])
    assert off_topic.veracity is not None and off_topic.veracity.label == "NOT_ENOUGH_INFO", off_topic.summary()
    assert on_topic.veracity is not None and on_topic.veracity.label == "REFUTED", on_topic.summary()


def test_encoders_quantize_int8_runs_the_shipped_encoders_in_int8() -> None:
    example = bundled_example()
    results = {}
    for quantize in ("none", "int8"):
        config = PipelineConfig.from_dict(
            {"stages": ["check_worthiness", "evidence_stance"], "encoders": {"quantize": quantize}}
        )
        with Verifier(config) as verifier:
            results[quantize] = verifier.verify(example["claim"], example["evidence"], force=True)
    fp32, int8 = results["none"], results["int8"]
    for stage in ("check_worthiness", "evidence_stance"):
        assert int8.provenance.models[stage].backend.endswith("-int8")
        assert not fp32.provenance.models[stage].backend.endswith("-int8")
    gaps = [
        abs(a.probabilities[label] - b.probabilities[label])
        for a, b in zip(fp32.evidence_stances, int8.evidence_stances, strict=True)
        for label in a.probabilities
    ]
    assert 0 < max(gaps) < 0.15, gaps  # another model (int8 weights), close to the fp32 one


def test_batch_stance_of_a_claim_with_500_sentences_in_bounded_memory(tmp_path: Path) -> None:
    evidence = [f"Study {i} found that vitamin D did not prevent infection in group {i}." for i in range(500)]
    claims = tmp_path / "claims.jsonl"
    claims.write_text(json.dumps({"id": "big", "claim": "Vitamin D prevents COVID-19.", "evidence": evidence}) + "\n")
    out = tmp_path / "out.jsonl"
    script = (
        "import sys\n"
        "from claimflow.cli.main import app\n"
        f"sys.argv = ['claimflow', 'batch', {str(claims)!r}, '-o', {str(out)!r}, '--stages', 'evidence_stance', "
        "'--chunk-size', '1']\n"  # claim at a time: the stage's own passes are counted (a prefetched chunk's are not)
        "try:\n    app()\nexcept SystemExit as exc:\n    code = exc.code or 0\nelse:\n    code = 0\n"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so the child of a large pytest process
        # would report its parent's size
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]\n"
        "print('maxrss_kb', hwm)\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    peak_mb = int(run.stdout.split("maxrss_kb")[-1]) / 1024
    (line,) = out.read_text().splitlines()
    result = json.loads(line)["result"]
    stances = result["evidence_stances"]
    assert len(stances) == 500 and all(s["relevance"] is not None for s in stances)
    assert result["provenance"]["forward_passes"]["evidence_stance"] == 16  # 500 sentences in batches of 32
    assert peak_mb < 2500, f"peak RSS {peak_mb:.0f} MB"

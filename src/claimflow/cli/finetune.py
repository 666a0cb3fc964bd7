"""``claimflow finetune``: train and evaluate soft prompts, distill justifications, train classifiers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from claimflow.cli._console import err, progress, progress_columns

app = typer.Typer(
    help="Training (all resumable): soft prompts, justification distillation, encoder and LoRA classifiers.",
    no_args_is_help=True,
)


class _Trainer(Protocol):
    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]: ...


def _train(trainer: _Trainer, max_steps: int) -> dict[str, Any]:
    """Train (or resume) under a progress bar; the run summary without its per-step history."""
    with _training_progress(max_steps) as advance:
        summary = trainer.train(on_step=advance)
    return {k: v for k, v in summary.items() if k != "history"}


@contextmanager
def _training_progress(total: int) -> Iterator[Callable[[dict[str, Any]], None]]:
    from rich.progress import Progress, TextColumn

    with Progress(*progress_columns(TextColumn("{task.fields[loss]}")), console=err) as bar:
        task = bar.add_task("training", total=total, loss="")
        yield lambda s: bar.update(task, completed=s["step"], loss=f"loss {s['loss']:.3f}")


def _evaluate_on(
    splits: Iterable[str], best: Path, score: Callable[[str], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Score the best model on each split: ``predictions-SPLIT.json`` beside it, the metrics in its provenance."""
    from claimflow.finetune.classifier import record_evaluation

    results = {}
    for split in splits:
        scored = score(split)
        (best.parent / f"predictions-{split}.json").write_text(json.dumps(scored), encoding="utf-8")
        results[split] = record_evaluation(best, scored)
    return results


def _finish(result: dict[str, Any], output_dir: Path, artifact: Path, install_to: Path | None = None) -> None:
    """Write ``result.json``; copy the artifact to ``install_to`` when asked; print the result."""
    (output_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if install_to is not None:
        shutil.rmtree(install_to, ignore_errors=True)
        shutil.copytree(artifact, install_to)
    typer.echo(json.dumps(result, indent=2))


@app.command("prompt-tuning")
def prompt_tuning(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    install_to: Annotated[
        Path | None, typer.Option(help="Also copy the trained artifact here (e.g. the package's default).")
    ] = None,
) -> None:
    """Train (or resume) a soft prompt; evaluates the best one on the config's test split."""
    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig, evaluate_artifact

    cfg = PromptTuningConfig.from_yaml(config)
    result = _train(PromptTuner(cfg), cfg.max_steps)
    artifact = cfg.output_dir / "best"
    if cfg.data.test_split:
        result["test"] = evaluate_artifact(artifact, cfg, cfg.data.test_split)
        provenance_path = artifact / "provenance.json"
        provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        provenance["evaluation"] = result["test"]
        provenance_path.write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    _finish(result, cfg.output_dir, artifact, install_to)


@app.command()
def evaluate(
    artifact: Annotated[Path, typer.Argument(help="Soft-prompt artifact folder.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The training config (data settings).")],
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "dev-test",
) -> None:
    """F1(Yes), P, R, accuracy and a bootstrap CI of a soft prompt on one split."""
    from claimflow.finetune.prompt_tuning import PromptTuningConfig, evaluate_artifact

    result = evaluate_artifact(artifact, PromptTuningConfig.from_yaml(config), split)
    typer.echo(json.dumps(result, indent=2))


@app.command()
def distill(
    dataset: Annotated[str, typer.Option(help="Registered dataset (covidfact, scifact, climate_fever...).")],
    split: Annotated[str, typer.Option(help="Split to distill.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL written (and resumed) line by line.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline config (YAML).")] = None,
    sample: Annotated[int | None, typer.Option(help="A seeded sample of this many claims.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder (default: $CLAIMFLOW_DATA or ../shared/data).")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="SQLite content cache shared between runs (default: next to the output).")
    ] = None,
) -> None:
    """Write the stance and justify stages' output for each claim of a dataset; gold labels never reach the models."""
    from claimflow.config import PipelineConfig
    from claimflow.finetune.distill import DistillCache, distill_config, run_distill, unlabelled_items
    from claimflow.finetune.ranked_evidence import claims_of
    from claimflow.verifier import Verifier

    base = PipelineConfig.from_yaml(config) if config else None
    # the split names `finetune classifier` reads (Climate-FEVER's train_part / dev_part too)
    items = unlabelled_items(claims_of(dataset, split, data_dir), sample=sample, seed=seed)
    store = DistillCache(cache or output.with_name(output.name + ".cache.sqlite"))
    with Verifier(distill_config(base)) as verifier, progress() as bar:
        task = bar.add_task("distilling", total=len(items))
        counts = run_distill(verifier, items, output, cache=store, on_item=lambda _id, _new: bar.advance(task))
    store.close()
    typer.echo(json.dumps(counts))


@app.command()
def classifier(
    config: Annotated[Path, typer.Option("--config", "-c", help="Classifier training config (YAML).")],
    evaluate_on: Annotated[
        list[str] | None, typer.Option("--evaluate-on", help="Splits to score the best model on afterwards (dev...).")
    ] = None,
    install_to: Annotated[Path | None, typer.Option(help="Also copy the trained artifact here.")] = None,
) -> None:
    """Fine-tune (or resume) an encoder classifier: full or LoRA, on the config's input fields."""
    from claimflow.finetune.classifier import ClassifierConfig, ClassifierTrainer, evaluate_classifier

    cfg = ClassifierConfig.from_yaml(config)
    result = _train(ClassifierTrainer(cfg), cfg.training.max_steps)
    best = cfg.output_dir / "best"
    positive = "Yes" if cfg.data.task == "check_worthiness" else None
    files = {cfg.data.train_split: cfg.data.train_file, cfg.data.dev_split: cfg.data.dev_file}

    def score(split: str) -> dict[str, Any]:
        return evaluate_classifier(best, cfg, split, files.get(split), positive=positive)

    result |= _evaluate_on(evaluate_on or [], best, score)
    _finish(result, cfg.output_dir, best, install_to)


@app.command()
def multitask(
    config: Annotated[Path, typer.Option("--config", "-c", help="Multi-task training config (YAML).")],
    install_to: Annotated[Path | None, typer.Option(help="Also copy the trained artifact here.")] = None,
) -> None:
    """Train (or resume) the multi-task evidence model: stance, relevance and claim heads on one encoder."""
    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer

    cfg = MultitaskConfig.from_yaml(config)
    result = _train(MultitaskTrainer(cfg), cfg.training.max_steps)
    _finish(result, cfg.output_dir, cfg.output_dir / "best", install_to)


@app.command()
def lora(
    config: Annotated[Path, typer.Option("--config", "-c", help="LoRA training config (YAML).")],
    evaluate_on: Annotated[
        list[str] | None, typer.Option("--evaluate-on", help="Splits to score the best adapter on afterwards.")
    ] = None,
) -> None:
    """LoRA on a causal LM for veracity, with a CLM (label words) or CLS (linear) head; resumable."""
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraTrainer

    cfg = CausalLoraConfig.from_yaml(config)
    trainer = CausalLoraTrainer(cfg)
    result = _train(trainer, cfg.training.max_steps)
    best = cfg.output_dir / "best"
    files = {cfg.data.train_split: cfg.data.train_file, cfg.data.dev_split: cfg.data.dev_file}
    result |= _evaluate_on(evaluate_on or [], best, lambda split: trainer.evaluate_best(split, files.get(split)))
    _finish(result, cfg.output_dir, best)


@app.command("reasoning-data")
def reasoning_data(
    task: Annotated[str, typer.Option(help="correct_claim (from the data), difference_cot or entity_cot (a teacher).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL written (and resumed) line by line.")],
    split: Annotated[str, typer.Option(help="COVID-Fact split.")] = "train",
    teacher: Annotated[
        str | None, typer.Option(help="Backend key of --config that writes the CoT (default: the justify stage's).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline config naming the backends.")] = None,
    sample: Annotated[int | None, typer.Option(help="A seeded sample of this many claims.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Teacher tokens per row.")] = 256,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder (default: $CLAIMFLOW_DATA or ../shared/data).")
    ] = None,
) -> None:
    """Reasoning datasets for the LoRA compositions (the LoraMap paper); teacher rows resume where they stopped."""
    import random

    from claimflow.config import PipelineConfig
    from claimflow.errors import ConfigError
    from claimflow.evals.datasets import load_dataset
    from claimflow.finetune.reasoning import TASK_TEMPLATES, correct_claim_rows, teacher_rows, write_rows
    from claimflow.llm.factory import make_backend
    from claimflow.models.store import ModelStore

    if task not in TASK_TEMPLATES:
        raise ConfigError(f"--task {task!r}; choose from {sorted(TASK_TEMPLATES)}")
    if task == "correct_claim":
        rows = correct_claim_rows(split, data_dir)
        if sample is not None and sample < len(rows):
            rows = random.Random(seed).sample(rows, sample)
        write_rows(rows, output)
        err.print(f"{len(rows)} CorrectClaim rows -> {output}", markup=False)
        return
    pipeline = PipelineConfig.from_yaml(config) if config else PipelineConfig()
    key = teacher or pipeline.justify.backend
    if key not in pipeline.backends:
        raise ConfigError(f"--teacher {key!r}: the config's backends are {sorted(pipeline.backends)}")
    examples = load_dataset("covidfact", split, data_dir)
    if sample is not None and sample < len(examples):
        examples = random.Random(seed).sample(examples, sample)
    backend = make_backend(pipeline.backends[key], ModelStore())
    try:
        with progress() as bar:
            bar_task = bar.add_task(task, total=len(examples))
            written = teacher_rows(
                task,  # type: ignore[arg-type]  # checked against TASK_TEMPLATES above
                examples,
                backend,
                out=output,
                max_tokens=max_tokens,
                on_row=lambda _id: bar.advance(bar_task),
            )
    finally:
        backend.close()
    err.print(f"{written} new {task} rows -> {output}", markup=False)


@app.command("reasoning-lora")
def reasoning_lora(
    config: Annotated[Path, typer.Option("--config", "-c", help="Reasoning-LoRA config (YAML).")],
) -> None:
    """A reasoning LoRA on a causal LM (loss on the target text only); resumable; a source for `compose`."""
    from claimflow.finetune.reasoning import ReasoningLoraConfig, ReasoningLoraTrainer

    cfg = ReasoningLoraConfig.from_yaml(config)
    result = _train(ReasoningLoraTrainer(cfg), cfg.training.max_steps)
    _finish(result, cfg.output_dir, cfg.output_dir / "best")


@app.command()
def compose(config: Annotated[Path, typer.Option("--config", "-c", help="Composition config (YAML).")]) -> None:
    """Compose reasoning LoRAs for veracity: lorahub, loraconcat or loramap; resumable."""
    from claimflow.finetune.compose import ComposeConfig, ComposeTrainer

    cfg = ComposeConfig.from_yaml(config)
    steps = cfg.hub.budget if cfg.method == "lorahub" else cfg.training.max_steps
    result = _train(ComposeTrainer(cfg), steps)
    _finish(result, cfg.output_dir, cfg.output_dir / "best")

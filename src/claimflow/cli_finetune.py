"""``claimflow finetune``: train and evaluate soft prompts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from claimflow.errors import ClaimflowError

app = typer.Typer(
    help="Training (all resumable): soft prompts, justification distillation, encoder and LoRA classifiers.",
    no_args_is_help=True,
)
err = Console(stderr=True)


@app.command("prompt-tuning")
def prompt_tuning(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    install_to: Annotated[
        Path | None, typer.Option(help="Also copy the trained artifact here (e.g. the package's default).")
    ] = None,
) -> None:
    """Train (or resume) a soft prompt; evaluates the best one on the config's test split."""
    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig, evaluate_artifact

    try:
        cfg = PromptTuningConfig.from_yaml(config)
        tuner = PromptTuner(cfg)
        with _progress(cfg.max_steps) as advance:
            summary = tuner.train(on_step=advance)
        artifact = cfg.output_dir / "best"
        result = {k: v for k, v in summary.items() if k != "history"}
        if cfg.data.test_split:
            result["test"] = evaluate_artifact(artifact, cfg, cfg.data.test_split)
            provenance_path = artifact / "provenance.json"
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
            provenance["evaluation"] = result["test"]
            provenance_path.write_text(json.dumps(provenance, indent=2), encoding="utf-8")
        (cfg.output_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        if install_to is not None:
            shutil.rmtree(install_to, ignore_errors=True)
            shutil.copytree(artifact, install_to)
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2))


@app.command()
def evaluate(
    artifact: Annotated[Path, typer.Argument(help="Soft-prompt artifact folder.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The training config (data settings).")],
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "dev-test",
) -> None:
    """F1(Yes), P, R, accuracy and a bootstrap CI of a soft prompt on one split."""
    from claimflow.finetune.prompt_tuning import PromptTuningConfig, evaluate_artifact

    try:
        result = evaluate_artifact(artifact, PromptTuningConfig.from_yaml(config), split)
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from claimflow.config import PipelineConfig
    from claimflow.evals.datasets import load_dataset
    from claimflow.finetune.distill import DistillCache, distill_config, run_distill, unlabelled_items
    from claimflow.verifier import Verifier

    try:
        base = PipelineConfig.from_yaml(config) if config else None
        items = unlabelled_items(load_dataset(dataset, split, data_dir), sample=sample, seed=seed)
        store = DistillCache(cache or output.with_name(output.name + ".cache.sqlite"))
        with (
            Verifier(distill_config(base)) as verifier,
            Progress(
                TextColumn("distilling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
            ) as progress,
        ):
            task = progress.add_task("", total=len(items))
            counts = run_distill(verifier, items, output, cache=store, on_item=lambda _id, _new: progress.advance(task))
        store.close()
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
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
    from claimflow.finetune.classifier import (
        ClassifierConfig,
        ClassifierTrainer,
        evaluate_classifier,
        record_evaluation,
    )

    try:
        cfg = ClassifierConfig.from_yaml(config)
        trainer = ClassifierTrainer(cfg)
        with _progress(cfg.training.max_steps) as advance:
            summary = trainer.train(on_step=advance)
        result: dict[str, object] = {k: v for k, v in summary.items() if k != "history"}
        positive = "Yes" if cfg.data.task == "check_worthiness" else None
        files = {cfg.data.train_split: cfg.data.train_file, cfg.data.dev_split: cfg.data.dev_file}
        for split in evaluate_on or []:
            scored = evaluate_classifier(cfg.output_dir / "best", cfg, split, files.get(split), positive=positive)
            (cfg.output_dir / f"predictions-{split}.json").write_text(json.dumps(scored), encoding="utf-8")
            result[split] = record_evaluation(cfg.output_dir / "best", scored)
        (cfg.output_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        if install_to is not None:
            shutil.rmtree(install_to, ignore_errors=True)
            shutil.copytree(cfg.output_dir / "best", install_to)
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2))


@app.command()
def multitask(
    config: Annotated[Path, typer.Option("--config", "-c", help="Multi-task training config (YAML).")],
    install_to: Annotated[Path | None, typer.Option(help="Also copy the trained artifact here.")] = None,
) -> None:
    """Train (or resume) the multi-task evidence model: stance, relevance and claim heads on one encoder."""
    from claimflow.finetune.multitask import MultitaskConfig, MultitaskTrainer

    try:
        cfg = MultitaskConfig.from_yaml(config)
        trainer = MultitaskTrainer(cfg)
        with _progress(cfg.training.max_steps) as advance:
            summary = trainer.train(on_step=advance)
        result = {k: v for k, v in summary.items() if k != "history"}
        (cfg.output_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        if install_to is not None:
            shutil.rmtree(install_to, ignore_errors=True)
            shutil.copytree(cfg.output_dir / "best", install_to)
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2))


@contextmanager
def _progress(total: int) -> Iterator[Callable[[dict[str, Any]], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("", total=total)
        yield lambda s: progress.update(task, completed=s["step"], description=f"loss {s['loss']:.3f}")


@app.command()
def lora(
    config: Annotated[Path, typer.Option("--config", "-c", help="LoRA training config (YAML).")],
    evaluate_on: Annotated[
        list[str] | None, typer.Option("--evaluate-on", help="Splits to score the best adapter on afterwards.")
    ] = None,
) -> None:
    """LoRA on a causal LM for veracity, with a CLM (label words) or CLS (linear) head; resumable."""
    from claimflow.finetune.classifier import record_evaluation
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraTrainer

    try:
        cfg = CausalLoraConfig.from_yaml(config)
        trainer = CausalLoraTrainer(cfg)
        with _progress(cfg.training.max_steps) as advance:
            summary = trainer.train(on_step=advance)
        result: dict[str, object] = {k: v for k, v in summary.items() if k != "history"}
        files = {cfg.data.train_split: cfg.data.train_file, cfg.data.dev_split: cfg.data.dev_file}
        for split in evaluate_on or []:
            scored = trainer.evaluate_best(split, files.get(split))
            (cfg.output_dir / f"predictions-{split}.json").write_text(json.dumps(scored), encoding="utf-8")
            result[split] = record_evaluation(cfg.output_dir / "best", scored)
        (cfg.output_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    except ClaimflowError as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2))

"""``claimflow finetune``: train and evaluate soft prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from claimflow.errors import ClaimflowError

app = typer.Typer(help="Training: soft prompts for check-worthiness (resumable).", no_args_is_help=True)
err = Console(stderr=True)


@app.command("prompt-tuning")
def prompt_tuning(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    install_to: Annotated[
        Path | None, typer.Option(help="Also copy the trained artifact here (e.g. the package's default).")
    ] = None,
) -> None:
    """Train (or resume) a soft prompt; evaluates the best one on the config's test split."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from claimflow.finetune.prompt_tuning import PromptTuner, PromptTuningConfig, evaluate_artifact

    try:
        cfg = PromptTuningConfig.from_yaml(config)
        tuner = PromptTuner(cfg)
        with Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("", total=cfg.max_steps)
            summary = tuner.train(
                on_step=lambda s: progress.update(task, completed=s["step"], description=f"loss {s['loss']:.3f}")
            )
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

"""``claimflow eval``: run A/B specs (resumable) and write reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID

from claimflow.cli._console import err, progress
from claimflow.cli._options import ActorsOpt, CpusPerActorOpt, Engine, EngineOpt, GpusPerActorOpt, RayAddressOpt
from claimflow.errors import ClaimflowError

app = typer.Typer(help="Prompt A/B evaluation: run specs, resume them, report with paired statistics.")

StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite run store (predictions + model-call cache).")]
DEFAULT_STORE = Path("runs/evals.sqlite")


@app.command()
def run(
    spec_file: Annotated[Path, typer.Argument(help="A/B spec (YAML).")],
    store: StoreOpt = DEFAULT_STORE,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data folder (default: $CLAIMFLOW_DATA or ../shared/data).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Items per batched call (stored as each batch finishes); 1: one at a time.")
    ] = 16,
    engine: EngineOpt = Engine.local,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = 2,
    cpus_per_actor: CpusPerActorOpt = 1.0,
    gpus_per_actor: GpusPerActorOpt = 0.0,
) -> None:
    """Predict every (variant, item) of the spec not yet in the store; rerun to resume."""
    from claimflow.evals.ab import ABSpec, run_ab
    from claimflow.evals.store import RunStore
    from claimflow.provenance import git_commit

    spec = ABSpec.from_yaml(spec_file)
    runs = RunStore(store)
    tasks: dict[str, TaskID] = {}
    with progress() as bar:

        def on_progress(variant: str, done: int, total: int) -> None:
            if variant not in tasks:
                tasks[variant] = bar.add_task(variant, total=total)
            bar.update(tasks[variant], completed=done)

        if engine is Engine.ray:
            from claimflow.batch_ray import RayOptions, run_ab_ray

            options = RayOptions(
                address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor
            )
            summary = run_ab_ray(
                spec,
                runs,
                options=options,
                data_dir=data,
                git_commit=git_commit(),
                on_progress=on_progress,
                batch_size=batch_size,
            )
        else:
            summary = run_ab(
                spec, runs, data_dir=data, git_commit=git_commit(), on_progress=on_progress, batch_size=batch_size
            )
    runs.close()
    verb = "resumed" if summary.resumed else "ran"
    err.print(
        f"{verb} {summary.run_id}: predicted {sum(summary.predicted.values())}, "
        f"already done {sum(summary.skipped.values())}, {summary.seconds:.1f} s -> {store}",
        markup=False,
    )


@app.command()
def report(
    run_ids: Annotated[list[str], typer.Argument(help="Run name(s) in the store.")],
    store: StoreOpt = DEFAULT_STORE,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for report.md and report.html.")] = Path(
        "runs/report"
    ),
) -> None:
    """Markdown + self-contained HTML: metrics with CIs, paired tests, confusion, calibration, disagreements."""
    from claimflow.evals.report import build_report, to_html, to_markdown
    from claimflow.evals.store import RunStore

    if not store.exists():
        raise ClaimflowError(f"no run store at {store}: run `claimflow eval run SPEC` first")
    runs = RunStore(store)
    built = build_report(runs, run_ids)
    runs.close()
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.md").write_text(to_markdown(built), encoding="utf-8")
    (output / "report.html").write_text(to_html(built), encoding="utf-8")
    err.print(f"wrote {output / 'report.md'} and {output / 'report.html'}", markup=False)


@app.command("runs")
def list_runs(store: StoreOpt = DEFAULT_STORE) -> None:
    """The runs in a store."""
    from datetime import UTC, datetime

    from claimflow.evals.store import RunStore

    if not store.exists():
        err.print(f"no run store at {store}", markup=False)
        raise typer.Exit(0)
    runs = RunStore(store)
    for run_id, created in runs.runs():
        count = sum(1 for _ in runs.predictions(run_id))
        stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{run_id}\t{stamp}\t{count} predictions")
    runs.close()

"""``claimflow batch``: verify many claims from a JSONL file, resumably (locally, in worker processes, or on Ray)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from claimflow.cli._console import err, progress
from claimflow.cli._options import (
    ActorsOpt,
    ConfigOpt,
    CpusPerActorOpt,
    Engine,
    EngineOpt,
    GpusPerActorOpt,
    RayAddressOpt,
    config_from,
    stages_from,
)
from claimflow.errors import InputError

app = typer.Typer()


@app.command()
def batch(
    input_file: Annotated[str, typer.Argument(help='JSONL: {"id", "claim", "evidence": [...]} per line.')],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL results; a rerun resumes it.")],
    stages: Annotated[str | None, typer.Option(help="Comma-separated subset, e.g. check_worthiness.")] = None,
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage whatever the gate says.")] = False,
    retry_errors: Annotated[bool, typer.Option(help="Redo items whose earlier line holds an error.")] = False,
    encoding: Annotated[str, typer.Option(help="Encoding of the input file.")] = "utf-8",
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Claims per chunk: the encoder stages are batched across a chunk.")
    ] = 16,
    workers: Annotated[
        int, typer.Option(min=1, help="Local engine: processes, each with its own models (CPU threads split).")
    ] = 1,
    engine: EngineOpt = Engine.local,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = 2,
    cpus_per_actor: CpusPerActorOpt = 1.0,
    gpus_per_actor: GpusPerActorOpt = 0.0,
) -> None:
    """Verify many claims; results are appended in input order, and a rerun skips finished ids."""
    from claimflow.batch import ConfigVerifier, load_items, run_batch, run_batch_workers
    from claimflow.io import prepare_output
    from claimflow.verifier import Verifier

    prepare_output(output)  # a bad output path fails before any model loads
    cfg = config_from(config)
    selected = stages_from(stages)
    if selected:
        cfg = cfg.with_stages(selected)
    if engine is Engine.ray and workers != 1:
        raise InputError("--workers is for the local engine; with --engine ray set --actors")
    items = load_items(input_file, encoding)
    with progress() as bar:
        task = bar.add_task("verifying", total=len(items))

        def advance(_id: str, _new: bool) -> None:
            bar.advance(task)

        if engine is Engine.ray:
            from claimflow.batch_ray import RayOptions, run_batch_ray

            options = RayOptions(
                address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor
            )
            threads = max(1, int(cpus_per_actor))
            summary = run_batch_ray(
                ConfigVerifier(cfg, threads=threads),
                input_file,
                items,
                output,
                options=options,
                force=force,
                retry_errors=retry_errors,
                on_item=advance,
                chunk_size=chunk_size,
                encoding=encoding,
            )
        elif workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            summary = run_batch_workers(
                ConfigVerifier(cfg, threads=threads),
                items,
                output,
                workers=workers,
                force=force,
                retry_errors=retry_errors,
                on_item=advance,
                chunk_size=chunk_size,
            )
        else:
            with Verifier(cfg) as verifier:
                summary = run_batch(
                    verifier,
                    items,
                    output,
                    force=force,
                    retry_errors=retry_errors,
                    on_item=advance,
                    chunk_size=chunk_size,
                )
    err.print(
        f"{summary.written} written, {summary.skipped} already done, {summary.errors} with input errors -> {output}",
        markup=False,
    )

"""``claimflow batch``: verify many claims from a JSONL file, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claimflow.cli._console import err, progress
from claimflow.cli._options import ConfigOpt, config_from, stages_from

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
) -> None:
    """Verify many claims; results are appended as they finish, and a rerun skips finished ids."""
    from claimflow.batch import load_items, run_batch
    from claimflow.io import prepare_output
    from claimflow.verifier import Verifier

    prepare_output(output)  # a bad output path fails before any model loads
    cfg = config_from(config)
    selected = stages_from(stages)
    if selected:
        cfg = cfg.with_stages(selected)
    items = load_items(input_file, encoding)
    with Verifier(cfg) as verifier, progress() as bar:
        task = bar.add_task("verifying", total=len(items))
        summary = run_batch(
            verifier,
            items,
            output,
            force=force,
            retry_errors=retry_errors,
            on_item=lambda _id, _new: bar.advance(task),
        )
    err.print(
        f"{summary.written} written, {summary.skipped} already done, {summary.errors} with input errors -> {output}",
        markup=False,
    )

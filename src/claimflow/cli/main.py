"""The root ``claimflow`` app: verify, batch, graph, config; every other command group is mounted here."""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from claimflow.cli import batch, debug, finetune, models, prompts, serve
from claimflow.cli import eval as eval_
from claimflow.cli._console import err, out, progress
from claimflow.cli._errors import ReportingGroup
from claimflow.cli._options import ConfigOpt, config_from
from claimflow.errors import InputError

if TYPE_CHECKING:
    from claimflow.config import PipelineConfig
    from claimflow.types import VerificationResult
    from claimflow.verifier import TracedRun, Verifier

app = typer.Typer(
    cls=ReportingGroup, help="Automated fact-checking on local models.", no_args_is_help=True, add_completion=False
)

GROUPS: tuple[tuple[typer.Typer, str | None], ...] = (
    (debug.app, None),  # runs, trace, replay, report: top-level commands
    (batch.app, None),  # batch: top-level command
    (serve.app, None),  # serve: top-level command
    (models.app, "models"),
    (prompts.app, "prompts"),
    (eval_.app, "eval"),
    (finetune.app, "finetune"),
)
"""Every command group: its module's ``app`` and the name it is mounted under (None: its commands
join the root's). ``claimflow --help`` lists the root's own commands first, then these in order."""

for group, name in GROUPS:
    app.add_typer(group, name=name)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def verify(
    claim: Annotated[str | None, typer.Argument(help="The claim to verify.")] = None,
    evidence: Annotated[
        str | None,
        typer.Option("--evidence", "-e", help="File of evidence: one sentence a line, or a JSON list; - for stdin."),
    ] = None,
    example: Annotated[bool, typer.Option("--example", help="Verify the bundled example claim.")] = False,
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage whatever the gate says.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    encoding: Annotated[str, typer.Option(help="Encoding of the evidence file.")] = "utf-8",
    stream: Annotated[bool, typer.Option("--stream", help="Show each node's result as it completes.")] = False,
    record: Annotated[
        bool, typer.Option("--record", help="Record the run (checkpoints + trace) for trace/replay/report.")
    ] = False,
    db: Annotated[
        Path | None, typer.Option("--db", help="Runs database for --record (default: runs/trace.sqlite).")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the run's HTML report here.")] = None,
) -> None:
    """Verify one claim against its evidence."""
    from claimflow.graphs.trace_store import default_db
    from claimflow.io import bundled_example, parse_evidence, read_text
    from claimflow.verifier import Verifier

    if example:
        data = bundled_example()
        claim, sentences = data["claim"], data["evidence"]
    else:
        if claim is None:
            raise InputError(NO_CLAIM)
        sentences = parse_evidence(read_text(evidence, encoding), evidence) if evidence else []
    trace_store = (db or default_db()) if record else None
    cfg = config_from(config)
    with Verifier(cfg, trace_store=trace_store) as verifier:
        if stream:
            run = debug.run_verify(verifier, claim, sentences, force=force, stream=True, to_stderr=as_json)
        else:
            run = _run_with_progress(verifier, claim, sentences, force=force)
        result = run.result
        debug.after_verify(verifier, run, report)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    print_text = partial(out.print, markup=False, highlight=False, soft_wrap=True)
    print_text(result.summary())
    note = _gate_note(result, cfg)
    if note:
        print_text(note)
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.provenance.node_seconds.items())
    print_text(f"Timings: {timings} (total {result.provenance.total_seconds:.2f}s)")
    print_text(f"Prompts: {', '.join(result.provenance.prompts.values())}")
    if result.status == "no_evidence":
        err.print(
            "note: no evidence was given, so only check-worthiness ran: pass --evidence FILE (one sentence a line) "
            "for a verdict",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


NO_CLAIM = (
    'give a CLAIM to verify, and its evidence: claimflow verify "The Eiffel Tower is in Berlin." --evidence FILE '
    "(one sentence a line, or a JSON list; - reads stdin); --example verifies the bundled example; "
    "claimflow serve does it in the browser"
)


def _run_with_progress(verifier: Verifier, claim: str, sentences: list[str], *, force: bool) -> TracedRun:
    """One verification under a transient progress bar on stderr (drawn on a terminal only): a step a stage."""
    from claimflow.verifier import NodeUpdate

    stages = list(verifier.config.stages)
    with progress(transient=True) as bar:
        task = bar.add_task(f"verifying: {stages[0]}", total=len(stages))

        def advance(update: NodeUpdate) -> None:
            done = stages.index(update.node) + 1 if update.node in stages else int(bar.tasks[0].completed) + 1
            following = stages[done] if done < len(stages) else "done"
            bar.update(task, completed=done, description=f"verifying: {following}")

        return verifier.run(claim, sentences, force=force, on_update=advance)


def _gate_note(result: VerificationResult, config: PipelineConfig) -> str | None:
    """A line saying the claim was judged not check-worthy but verified anyway, or stopped at the gate."""
    from claimflow.graphs.nodes.check_worthiness import is_check_worthy

    cw = result.check_worthiness
    if cw is None or is_check_worthy(cw, config.check_worthiness):
        return None
    if result.status == "not_check_worthy" and result.evidence:
        return (
            "Note: judged not check-worthy, so the run stopped at the gate (check_worthiness.gate: stop); "
            "--force verifies it anyway"
        )
    if "evidence_stance" in result.stages_run:
        return "Note: judged not check-worthy; verified anyway, as it has evidence (check_worthiness.gate: annotate)"
    return None


GraphFormat = Literal["mermaid", "ascii", "dot", "svg", "png", "html"]


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Diagram format (all rendered offline).")] = "mermaid",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print or write the compiled graph (no model is loaded, no web service is called)."""
    from claimflow.debug import render
    from claimflow.io import refuse_folder, write_output
    from claimflow.verifier import Verifier

    if output is not None:
        refuse_folder(output)  # before the diagram is drawn
    drawable = Verifier(config_from(config)).graph.get_graph()
    data: str | bytes
    if fmt == "mermaid":
        data = drawable.draw_mermaid()
    elif fmt == "ascii":
        data = render.to_text(drawable)
    elif fmt == "dot":
        data = render.to_dot(drawable)
    elif fmt == "svg":
        data = render.to_svg(render.layout(drawable))
    elif fmt == "html":
        data = render.to_html(drawable)
    else:
        data = render.to_png(render.layout(drawable))
    if output is not None:
        write_output(output, data)
        err.print(f"{fmt}: {output}", markup=False)
    elif isinstance(data, bytes):
        if sys.stdout.isatty():
            err.print("error: PNG is binary: give --output FILE (or redirect stdout)", markup=False)
            raise typer.Exit(2)
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data if data.endswith("\n") else data + "\n")


@app.command("config")
def show_config(config: ConfigOpt = None) -> None:
    """Print the effective pipeline config as YAML (a starting point for your own)."""
    sys.stdout.write(config_from(config).to_yaml())

"""``claimflow runs / trace / replay / report``: read recorded runs back, fork them, render them.

Runs are recorded by ``claimflow verify --record`` (or ``Verifier(trace_store=...)``) into one
SQLite file: ``--db``, else ``$CLAIMFLOW_RUNS_DB``, else ``runs/trace.sqlite``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claimflow.cli._console import err
from claimflow.io import write_output

if TYPE_CHECKING:
    from claimflow.verifier import NodeUpdate, TracedRun, Verifier

app = typer.Typer()
"""Mounted without a name: these are top-level ``claimflow`` commands."""

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Runs database (default: $CLAIMFLOW_RUNS_DB, else runs/trace.sqlite)."),
]
RunArg = Annotated[str, typer.Argument(help="Run id (a unique prefix is enough), or 'last'.")]


def _db(db: Path | None) -> Path:
    from claimflow.graphs.trace_store import default_db

    return db or default_db()


def _say(text: str) -> None:
    """Plain text to stdout, unwrapped (rich would fold long prompt lines)."""
    sys.stdout.write(text)


# --- used by `claimflow verify` ------------------------------------------------------------------


def run_verify(
    verifier: Verifier, claim: str, evidence: list[str], *, force: bool, stream: bool, to_stderr: bool
) -> TracedRun:
    """Run one verification, printing each node's update as it completes when ``stream``."""
    from claimflow.debug.text import format_update

    stream_to = sys.stderr if to_stderr else sys.stdout

    def show(update: NodeUpdate) -> None:
        stream_to.write(format_update(update.node, update.update) + "\n")
        stream_to.flush()

    return verifier.run(claim, evidence, force=force, on_update=show if stream else None)


def after_verify(verifier: Verifier, run: TracedRun, report: Path | None) -> None:
    """Say where the run was recorded; write the HTML report when asked."""
    if report is not None:
        from claimflow.debug.history import report_for_traced

        write_output(report, report_for_traced(verifier, run))
        err.print(f"report: {report}", markup=False, highlight=False)
    if run.run_id is not None and verifier.trace_store is not None:
        err.print(
            f"run {run.run_id} recorded in {verifier.trace_store.path}: `claimflow trace {run.run_id}`",
            markup=False,
            highlight=False,
        )


# --- commands -----------------------------------------------------------------------------------


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.")] = 20,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List recent recorded runs."""
    from claimflow.graphs.trace_store import TraceStore

    with TraceStore.open_existing(_db(db)) as store:
        infos = store.runs(limit)
    if as_json:
        for info in infos:
            result = info.result
            row: dict[str, Any] = {
                "run_id": info.run_id,
                "created": info.created,
                "status": info.status,
                "claim": info.claim,
                "parent_run": info.parent_run,
                "from_node": info.from_node,
                "changes": info.changes,
                "verdict": result.veracity.label if result and result.veracity else None,
                "result_status": result.status if result else None,
            }
            sys.stdout.write(json.dumps(row) + "\n")
        return
    lines = [f"{'run':<12}  {'when':<19}  {'status':<7}  {'verdict':<22}  claim"]
    for info in infos:
        result = info.result
        if result is not None and result.veracity is not None:
            verdict = f"{result.veracity.label} {result.veracity.confidence:.2f}"
        else:
            verdict = result.status if result is not None else "-"
        when = dt.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M:%S")
        claim = info.claim if len(info.claim) <= 70 else info.claim[:69] + "…"
        if info.parent_run:
            claim += f"  (replay of {info.parent_run} from {info.from_node})"
        lines.append(f"{info.run_id:<12}  {when:<19}  {info.status:<7}  {verdict:<22}  {claim}")
    if not infos:
        lines.append("(no runs yet: `claimflow verify ... --record`)")
    _say("\n".join(lines) + "\n")


@app.command()
def trace(
    run_id: RunArg,
    node: Annotated[str | None, typer.Option("--node", help="Show only this node.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not shorten prompts and outputs.")] = False,
    calls: Annotated[int, typer.Option("--calls", help="Model calls shown per node (-1: all).")] = 3,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The history and the trace as JSON.")] = False,
) -> None:
    """Show a run's state history and, per node, its inputs, rendered prompts, raw model outputs,
    verbalized scores and timing."""
    from claimflow.debug.history import load_run
    from claimflow.debug.text import format_trace
    from claimflow.graphs.trace_store import TraceStore

    with TraceStore.open_existing(_db(db)) as store:
        stored = load_run(store, run_id)
    if as_json:
        data = {
            "run_id": stored.info.run_id,
            "status": stored.info.status,
            "parent_run": stored.info.parent_run,
            "from_node": stored.info.from_node,
            "changes": stored.info.changes,
            "result": json.loads(stored.info.result_json) if stored.info.result_json else None,
            "history": [
                {
                    "step": s.metadata.get("step"),
                    "source": s.metadata.get("source"),
                    "checkpoint_id": s.config["configurable"].get("checkpoint_id"),
                    "next": list(s.next),
                    "keys": sorted(s.values),
                }
                for s in stored.history
            ],
            "trace": [t.model_dump(mode="json") for t in stored.state.get("trace", []) if node in (None, t.node)],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _say(format_trace(stored.info, stored.history, node=node, full=full, max_calls=calls))


@app.command()
def replay(
    run_id: RunArg,
    from_node: Annotated[
        str | None, typer.Option("--from", help="Re-run from this node (default: the first one a change affects).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Edit the state first: PATH=VALUE, e.g. evidence_stances.0.label=REFUTE."),
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="Another prompt: STAGE=ID@V, e.g. veracity=veracity_justifications_rawfc@1."),
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The new run's id, the changes and the result.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the new run's HTML report.")] = None,
) -> None:
    """Time travel: fork a run just before a node, with edited state or another prompt version,
    run it on, and show how the result changed (the original run is kept)."""
    from claimflow.debug.history import load_run, report_for_stored
    from claimflow.debug.replay import Edit, parse_prompt_override
    from claimflow.debug.replay import replay as do_replay
    from claimflow.debug.text import format_replay
    from claimflow.graphs.trace_store import TraceStore

    with TraceStore.open_existing(_db(db)) as store:
        edits = [Edit.parse(text) for text in set_ or []]
        prompts = dict(parse_prompt_override(text) for text in prompt or [])
        outcome = do_replay(store, run_id, from_node=from_node, edits=edits, prompts=prompts)
        if report is not None:
            write_output(report, report_for_stored(load_run(store, outcome.run_id)))
    if as_json:
        data = {
            "run_id": outcome.run_id,
            "parent_run": outcome.parent.run_id,
            "from_node": outcome.from_node,
            "changes": outcome.changes,
            "diff": outcome.diff,
            "result": outcome.after.model_dump(mode="json"),
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _say(format_replay(outcome))
    if report is not None:
        err.print(f"report: {report}", markup=False, highlight=False)


@app.command()
def report(
    run_id: RunArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file (default: report-RUN.html).")] = None,
    db: DbOpt = None,
) -> None:
    """Write one run as a self-contained HTML page: graph with the path taken, per-node panels
    (prompts, raw outputs, scores, timings), evidence in stance colours."""
    from claimflow.debug.history import load_run, report_for_stored
    from claimflow.graphs.trace_store import TraceStore

    with TraceStore.open_existing(_db(db)) as store:
        stored = load_run(store, run_id)
        path = output or Path(f"report-{stored.info.run_id}.html")
        write_output(path, report_for_stored(stored))
    err.print(f"report: {path}", markup=False, highlight=False)

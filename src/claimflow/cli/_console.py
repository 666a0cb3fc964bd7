"""The consoles every command writes through, and the progress bar of the long-running ones.

claimflow's own progress goes to stderr, and only from the CLI: the library prints nothing (and keeps
third-party loaders' bars and warnings quiet), so a command's stdout is its result alone.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

out = Console()
err = Console(stderr=True)


def progress_columns(*between: ProgressColumn) -> tuple[ProgressColumn, ...]:
    """The bar's columns: description, bar, done/total, ``between``, elapsed time and the ETA."""
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *between,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )


def progress(*, transient: bool = False) -> Progress:
    """A progress bar on stderr: each task's description, the bar, done/total, the time taken and the
    time left. ``transient``: the bar is cleared when done (on a terminal; elsewhere nothing is drawn)."""
    return Progress(*progress_columns(), console=err, transient=transient)

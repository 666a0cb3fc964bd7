"""What every artifact and result records about the code that made it: the claimflow version and,
when claimflow runs from a source checkout, its git commit.

One place for it, on the ground floor (it needs nothing but ``_version``), so the verifier's result
provenance, the trainers' ``provenance.json``, the distilled datasets and the A/B runs store all
stamp the same two facts the same way.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from claimflow._version import __version__


@cache
def git_commit() -> str | None:
    """The commit of a source checkout of claimflow, if it runs from one (None for an installed wheel,
    or when git is missing)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def stamp(**extra: Any) -> dict[str, Any]:
    """``{"claimflow_version": ..., "git_commit": ..., **extra}``: the provenance keys every
    artifact carries, in that order (unpack it into a provenance dict with ``**stamp()``)."""
    return {"claimflow_version": __version__, "git_commit": git_commit(), **extra}

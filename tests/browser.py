"""Headless Chromium (Debian's package) for the HTML report tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run chromium with a fresh profile under ``tmp_path``; no network is touched."""
    flags = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run(["chromium", *flags, *args], capture_output=True, text=True, timeout=120)

"""Headless Chromium (Debian's package) for the browser tests: the HTML reports rendered by the
``chromium`` command line, and the app of ``claimflow serve`` driven through Playwright with that
same system browser (no browser is downloaded).

Screenshots are kept as test artifacts, never compared as pixels: under ``$CLAIMFLOW_TEST_ARTIFACTS``
when it is set (CI uploads that folder), else under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
ARTIFACTS_ENV = "CLAIMFLOW_TEST_ARTIFACTS"


def chromium_path() -> str | None:
    """The system Chromium, if installed (Debian: ``chromium``; elsewhere often ``chromium-browser``)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run chromium with a fresh profile under ``tmp_path``; no network is touched."""
    flags = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([chromium_path() or "chromium", *flags, *args], capture_output=True, text=True, timeout=120)


def artifacts_dir(tmp_path: Path, test_name: str) -> Path:
    """Where a test keeps its screenshots: ``$CLAIMFLOW_TEST_ARTIFACTS/<test>``, else ``tmp_path``."""
    root = os.environ.get(ARTIFACTS_ENV)
    folder = Path(root) / re.sub(r"[^\w.-]+", "_", test_name) if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def browser_page(viewport: tuple[int, int] = (1280, 900)) -> Iterator[tuple[Any, list[str]]]:
    """A Playwright page in the system Chromium (headless, offline flags), and the list its page errors
    and console errors are collected in, for the test to check."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    assert path is not None, "no chromium on PATH"
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    with sync_playwright() as playwright:
        # Playwright adds its own headless switch; the other flags keep the browser offline
        browser = playwright.chromium.launch(executable_path=path, args=[f for f in FLAGS if f != "--headless"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", on_console)
            yield page, problems
        finally:
            browser.close()

"""The kill-and-resume tests' shared body: start a CLI command in its own process group, SIGKILL the
group once it has done some work, and run it again to completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def run_until_killed(
    command: Sequence[str],
    ready: Callable[[], bool],
    *,
    what: str,
    timeout_s: float = 300.0,
    stdout: int = subprocess.PIPE,
) -> None:
    """Start ``command`` and SIGKILL its whole process group as soon as ``ready()`` holds (or at
    ``timeout_s``); it must still be running then. What it wrote stays for the caller to check."""
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(0.2)
    if process.poll() is not None:
        stderr = process.stderr.read().decode(errors="replace")[-500:] if process.stderr else ""
        raise AssertionError(f"{what} ended before it could be killed: {stderr}")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def rerun(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` again to the end; it must exit 0."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def checkpoint_step(state: Path) -> int:
    """The step a trainer's ``checkpoint/state.pt`` (the shared loop's) was saved at."""
    import torch

    return int(torch.load(state, weights_only=False)["state"]["step"])


def kill_and_resume_training(command: Sequence[str], out: Path, steps: int) -> dict[str, Any]:
    """Kill a ``steps``-step training run (writing to ``out``) after its checkpoint reached step 4,
    rerun it, and check that it resumed and ran each step exactly once; the rerun's JSON result."""
    state = out / "checkpoint" / "state.pt"

    def reached_step_4() -> bool:
        if not state.exists():
            return False
        try:
            return checkpoint_step(state) >= 4
        except Exception:  # being replaced at this instant
            return False

    run_until_killed(command, reached_step_4, what="training")
    killed_at = checkpoint_step(state)
    assert 4 <= killed_at < steps
    result: dict[str, Any] = json.loads(rerun(command).stdout)
    assert result["resumed"] is True and result["steps"] == steps
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == list(range(1, steps + 1))  # each step exactly once
    return result

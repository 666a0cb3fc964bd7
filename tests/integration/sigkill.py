"""The kill-and-resume tests' shared body: start a CLI command in its own process group, SIGKILL the
group once it has done some work, and run it again to completion."""

from __future__ import annotations

import contextlib
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


# --- many kill points in one process: a fork server ----------------------------------------------
#
# ``python -m tests.integration.sigkill SCENARIO WORKDIR KILLS SEED`` imports claimflow once, then runs
# the real CLI command of SCENARIO in forked children: an uninterrupted run into WORKDIR/clean, then
# into WORKDIR/killed a run SIGKILLed at each of KILLS seeded kill points, each resumed by the next,
# and one last run to the end. Half the kill points are "at the k-th model call" (the backend SIGKILLs
# its own process), half "after a seeded delay" (the parent SIGKILLs the child). It prints one JSON
# report; the tests compare the two outputs.

KILLING_KIND = "killing_fake"
_KILL_AT: dict[str, int] = {"call": 0, "calls": 0}


def _register_killing_backend() -> None:
    import zlib
    from typing import Literal

    from claimflow.config import BackendConfig
    from claimflow.llm.fake import FakeBackend
    from claimflow.llm.registry import register_backend

    class KillingFakeConfig(BackendConfig):
        kind: Literal["killing_fake"] = "killing_fake"

    def tick() -> None:
        _KILL_AT["calls"] += 1
        if _KILL_AT["call"] and _KILL_AT["calls"] >= _KILL_AT["call"]:
            os.kill(os.getpid(), signal.SIGKILL)

    def score(request: Any) -> dict[str, float]:
        tick()
        text = "".join(m.content for m in request.messages)
        return {c: -float(zlib.crc32((c + text).encode()) % 7) for c in request.candidates}

    def generate(request: Any) -> str:
        tick()
        return f"Justified from {zlib.crc32(request.messages[-1].content.encode()) % 1000}."

    register_backend(
        KILLING_KIND,
        KillingFakeConfig,
        lambda config, store: FakeBackend(config.model, score_fn=score, generate_fn=generate),
    )


def _child(args: Sequence[str], kill_at_call: int) -> None:
    """In a forked child: run the CLI to the end (exit 0), an error (exit 3) or a kill."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _KILL_AT.update(call=kill_at_call, calls=0)
    code = 3
    try:
        from claimflow.cli.main import app

        if app(list(args), prog_name="claimflow", standalone_mode=False) in (None, 0):
            code = 0
    finally:  # an exception is reported through the exit status
        os._exit(code)


def _fork_run(args: Sequence[str], *, kill_at_call: int = 0, kill_after_s: float | None = None) -> str:
    """``"done"``, ``"killed"`` or ``"error"``: how one forked run of the CLI ended."""
    pid = os.fork()
    if pid == 0:
        _child(args, kill_at_call)
    ended, status = 0, 0
    if kill_after_s is not None:
        deadline = time.monotonic() + kill_after_s
        while not ended and time.monotonic() < deadline:
            ended, status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.002)
        if not ended:
            os.kill(pid, signal.SIGKILL)
    if not ended:
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    return "done" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "error"


def kill_points(kills: int, calls: int, seconds: float, seed: int) -> list[tuple[str, float]]:
    """``kills`` seeded kill points: ("call", k) with 1 <= k <= calls, ("delay", s) with s < seconds."""
    import random

    rng = random.Random(seed)
    points: list[tuple[str, float]] = []
    for i in range(kills):
        if i % 2 == 0:
            points.append(("call", float(rng.randint(1, max(1, calls)))))
        else:
            points.append(("delay", rng.uniform(0.0, seconds)))
    return points


def _preload() -> None:
    """Import what the commands import lazily, so that each forked run starts at once."""
    import claimflow.batch
    import claimflow.cli.main
    import claimflow.evals.ab
    import claimflow.evals.store
    import claimflow.finetune.distill
    import claimflow.verifier  # noqa: F401


def fork_kill_resume(scenario: Callable[[Path], list[str]], workdir: Path, kills: int, seed: int) -> dict[str, Any]:
    """Run ``scenario(folder)`` (CLI arguments writing under ``folder``) once uninterrupted into
    ``workdir/clean``; then in cycles ``workdir/cycle<N>``: start from nothing, SIGKILL the run at seeded
    kill points and resume it until a run ends by itself; until ``kills`` runs were killed. The report
    names the cycles (each holds a finished output to compare with the clean one)."""
    _register_killing_backend()
    _preload()
    clean = workdir / "clean"
    clean.mkdir(parents=True)
    clean_args = scenario(clean)
    _KILL_AT.update(call=0, calls=0)
    t0 = time.monotonic()
    first = _fork_run(clean_args)
    seconds = time.monotonic() - t0
    _KILL_AT.update(call=0, calls=0)
    counted = workdir / "count"
    counted.mkdir()
    pid = os.fork()
    if pid == 0:  # the model calls of one clean run, counted in a child
        _child_counting(scenario(counted), workdir / "calls")
    os.waitpid(pid, 0)
    calls = int((workdir / "calls").read_text())
    points = iter(kill_points(8 * kills, calls, seconds, seed))
    cycles: list[dict[str, Any]] = []
    killed = 0
    while killed < kills:
        folder = workdir / f"cycle{len(cycles)}"
        folder.mkdir()
        args, outcomes = scenario(folder), []
        while True:
            kind, value = next(points)
            if kind == "call":
                outcome = _fork_run(args, kill_at_call=int(value))
            else:
                outcome = _fork_run(args, kill_after_s=value)
            outcomes.append(outcome)
            if outcome != "killed":
                break
        killed += outcomes.count("killed")
        cycles.append({"folder": folder.name, "outcomes": outcomes})
    return {"clean": first, "calls": calls, "seconds": seconds, "killed": killed, "cycles": cycles}


def _child_counting(args: Sequence[str], out: Path) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from claimflow.cli.main import app

    try:
        app(list(args), prog_name="claimflow", standalone_mode=False)
    finally:
        out.write_text(str(_KILL_AT["calls"]))
        os._exit(0)


# --- a trainer's own command, SIGKILLed at many points (forked children again) --------------------


def _fork_train(
    args: Sequence[str], state: Path, *, after_s: float | None = None, after_saves: int | None = None
) -> tuple[str, int]:
    """One forked run of a training command, SIGKILLed ``after_s`` seconds in or once it has replaced
    ``state`` (its checkpoint) ``after_saves`` times: (``"done"``, ``"killed"`` or ``"error"``, how many
    times ``state`` was seen replaced)."""
    pid = os.fork()
    if pid == 0:
        _child(args, 0)
    started, seen = time.monotonic(), set()
    with contextlib.suppress(FileNotFoundError):
        before = os.stat(state)
        seen.add((before.st_ino, before.st_mtime_ns))
    initial = len(seen)
    ended, status = 0, 0
    while not ended:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            break
        with contextlib.suppress(FileNotFoundError):
            stat = os.stat(state)
            seen.add((stat.st_ino, stat.st_mtime_ns))
        if (after_s is not None and time.monotonic() - started >= after_s) or (
            after_saves is not None and len(seen) - initial >= after_saves
        ):
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.001)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed", len(seen) - initial
    return ("done" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "error"), len(seen) - initial


def _preload_trainers() -> None:
    """Import the trainers and the model code they load lazily, so that each forked run starts at once."""
    import peft  # noqa: F401
    import transformers.models.bert.modeling_bert
    import transformers.models.llama.modeling_llama
    import transformers.models.mpnet.modeling_mpnet  # noqa: F401

    import claimflow.cli.main
    import claimflow.finetune.classifier
    import claimflow.finetune.compose
    import claimflow.finetune.lora
    import claimflow.finetune.multitask
    import claimflow.finetune.prompt_tuning
    import claimflow.finetune.reasoning  # noqa: F401


def fork_kill_train(
    scenario: Callable[[Path], tuple[list[str], Path]], workdir: Path, kills: int, seed: int
) -> dict[str, Any]:
    """``scenario(folder)`` writes a training run's config under ``folder`` and gives its CLI arguments
    and the file its checkpoint is written to. Run it once to the end into ``workdir/clean``; then in
    cycles ``workdir/cycle<N>``: SIGKILL it at seeded points -- alternately after a delay anywhere in
    the run (model loading included) and once its checkpoint was replaced k times in that run -- and
    rerun until a run ends by itself; until ``kills`` runs were killed. Returns the folders of the
    clean run and of each finished cycle, and the outcomes."""
    import random

    _preload_trainers()
    rng = random.Random(seed)
    clean = workdir / "clean"
    clean_args, clean_state = scenario(clean)
    started = time.monotonic()
    outcome, saves = _fork_train(clean_args, clean_state)
    seconds = time.monotonic() - started
    assert outcome == "done", f"the uninterrupted run ended with {outcome}"
    cycles: list[dict[str, Any]] = []
    killed = 0
    while killed < kills:
        folder = workdir / f"cycle{len(cycles)}"
        args, state = scenario(folder)
        outcomes: list[str] = []
        while not outcomes or outcomes[-1] == "killed":
            if len(outcomes) % 2 == 0:
                outcome, _ = _fork_train(args, state, after_s=rng.uniform(0.0, seconds))
            else:
                outcome, _ = _fork_train(args, state, after_saves=rng.randint(1, max(1, saves)))
            outcomes.append(outcome)
            assert len(outcomes) < 60, f"{folder.name}: no run ended by itself ({outcomes[-5:]})"
        assert outcomes[-1] == "done", f"{folder.name}: a resumed run failed ({outcomes})"
        killed += outcomes.count("killed")
        cycles.append({"folder": folder, "outcomes": outcomes})
    return {"clean": clean, "seconds": seconds, "saves": saves, "killed": killed, "cycles": cycles}


def _main(argv: Sequence[str]) -> int:
    import importlib

    if argv[0] == "--train":  # a fresh process: forking one that has run torch can hang its children
        module_name, function, workdir, kills, seed, base = argv[1:]
        scenario_of = getattr(importlib.import_module(module_name), function)
        report = fork_kill_train(lambda folder: scenario_of(folder, Path(base)), Path(workdir), int(kills), int(seed))
        print(json.dumps(report, default=str))
        return 0
    module_name, function, workdir, kills, seed = argv
    scenario = getattr(importlib.import_module(module_name), function)
    report = fork_kill_resume(scenario, Path(workdir), int(kills), int(seed))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))

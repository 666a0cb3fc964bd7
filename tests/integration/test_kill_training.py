"""SIGKILL the shared training loop (``finetune.loop.ResumableLoop``, under every trainer: classifier,
multitask, prompt tuning, LoRA) at >= 20 seeded points, after a step or in the middle of writing a
checkpoint, each kill resumed by the next run: the trained weights, the loss history and the best
dev step equal an uninterrupted run's exactly (each step run once, the RNG restored).

Each run is a forked child (torch imported once), so a kill point costs milliseconds; the trainers'
own commands are killed once each on their real models in the slow tests (test_encoder_classifier,
test_multitask, test_prompt_tuning).
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the training loop needs torch (pip install 'claimflow[train]')")

from claimflow.finetune.loop import LoopSettings, ResumableLoop  # noqa: E402

KILLS = 24
STEPS = 40
SETTINGS = LoopSettings(
    batch_size=8, max_steps=STEPS, eval_every=10, checkpoint_every=3, warmup_steps=5, patience=100, learning_rate=0.05
)


def _train(out_dir: Path, kill: tuple[str, int] | None) -> None:
    """In a child: train to the end; SIGKILL itself at ``kill`` = ("step", k) after step k, or
    ("save", k) halfway through writing the first checkpoint after step k."""
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    data, labels = torch.randn(64, 16, generator=generator), torch.randint(0, 3, (64,), generator=generator)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(32, 3)
    )  # dropout: the RNG must be restored on resume too
    steps = {"done": 0}
    real_save = torch.save

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        if kill is not None and kill[0] == "save" and steps["done"] >= kill[1] and str(path).endswith(".tmp"):
            real_save(obj, path, *args, **kwargs)
            size = os.path.getsize(path)
            os.truncate(path, size // 2)  # the file is half written when the process dies
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, path, *args, **kwargs)

    torch.save = save

    def on_step(info: dict[str, Any]) -> None:
        steps["done"] = info["step"]
        if kill is not None and kill[0] == "step" and info["step"] == kill[1]:
            os.kill(os.getpid(), signal.SIGKILL)

    def evaluate() -> dict[str, Any]:
        return {"score": float((model(data).argmax(-1) == labels).float().mean())}

    def save_best(metrics: dict[str, Any]) -> None:
        (out_dir / "best.txt").write_text(str(metrics["score"]), encoding="utf-8")

    loop = ResumableLoop(model, SETTINGS, out_dir)
    loop.run(
        64,
        lambda idx: torch.nn.functional.cross_entropy(model(data[list(idx)]), labels[list(idx)]),
        evaluate,
        save_best,
        on_step=on_step,
    )


def _fork(out_dir: Path, kill: tuple[str, int] | None) -> str:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            _train(out_dir, kill)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the training child failed ({status})"
    return "done"


def _saved(out_dir: Path) -> dict[str, Any]:
    return dict(torch.load(out_dir / "checkpoint" / "state.pt", weights_only=False))


def _step(out_dir: Path) -> int:
    path = out_dir / "checkpoint" / "state.pt"
    return int(_saved(out_dir)["state"]["step"]) if path.exists() else 0


def test_the_training_loop_survives_sigkill_at_every_point(tmp_path: Path) -> None:
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])  # its first use imports torch._dynamo: once, here
    clean = tmp_path / "clean"
    clean.mkdir()
    assert _fork(clean, None) == "done"
    expected = _saved(clean)
    rng = random.Random(0)
    killed, cycles = 0, 0
    while killed < KILLS:
        out_dir = tmp_path / f"cycle{cycles}"
        out_dir.mkdir()
        cycles += 1
        outcome = "killed"
        while outcome == "killed":
            start = _step(out_dir)  # a kill point past where the rerun resumes
            if start >= STEPS:
                outcome = _fork(out_dir, None)
                break
            kill = (rng.choice(["step", "save"]), rng.randint(start + 1, STEPS))
            outcome = _fork(out_dir, kill)
            killed += outcome == "killed"
        got = _saved(out_dir)
        assert not (out_dir / "checkpoint" / "state.tmp").exists()  # a half-written one was replaced
        history = [h["step"] for h in got["state"]["history"] if "loss" in h]
        assert history == list(range(1, STEPS + 1)), f"cycle {cycles}: each step once"
        assert got["state"]["history"] == expected["state"]["history"]  # the same losses and dev scores
        assert got["state"]["best_step"] == expected["state"]["best_step"]
        for name, value in expected["params"].items():
            assert torch.equal(got["params"][name], value), f"cycle {cycles}: {name} differs"
        assert (out_dir / "best.txt").read_text() == (clean / "best.txt").read_text()
    assert cycles >= 2

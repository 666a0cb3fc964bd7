"""A full disk during a training checkpoint, a batch and a run-store write: the error says what
happened, the previous checkpoint (the finished lines, the committed rows) stays usable, and a rerun
once there is space again resumes.

Each case runs twice: with ``OSError(ENOSPC)`` injected, and on a real, small tmpfs that the test
fills (where the process may mount one: root on Linux; skipped elsewhere).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import PROMPT_ONLY

from claimflow.batch import done_ids, repair_tail, run_batch
from claimflow.errors import InputError
from claimflow.evals.store import PredictionRow, RunStore
from claimflow.llm.fake import FakeBackend
from claimflow.verifier import Verifier

torch = pytest.importorskip("torch", reason="the training loop needs torch (pip install 'claimflow[train]')")

from claimflow.finetune.loop import LoopSettings, ResumableLoop  # noqa: E402

NO_SPACE = "No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test (skipped where mounting is not allowed)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler file (delete it to free the space)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (1 << 16, 1 << 10, 1):
            while True:
                try:
                    if handle.write(b"\0" * size) == 0:
                        break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


# --- a training checkpoint -----------------------------------------------------------------------


def _train(out_dir: Path, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 64)  # a ~50 KB checkpoint with its optimizer state
    data = torch.randn(32, 64)
    settings = LoopSettings(batch_size=8, max_steps=6, eval_every=100, checkpoint_every=2, warmup_steps=0)
    loop = ResumableLoop(model, settings, out_dir)
    return loop.run(
        32,
        lambda idx: model(data[list(idx)]).pow(2).mean(),
        lambda: {"score": 0.0},
        lambda _metrics: None,
        on_step=on_step,
    )


def _checkpoint_step(out_dir: Path) -> int:
    return int(torch.load(out_dir / "checkpoint" / "state.pt", weights_only=False)["state"]["step"])


def _resumes_to_the_end(out_dir: Path) -> None:
    result = _train(out_dir)
    assert result["resumed"] is True and result["steps"] == 6
    assert [h["step"] for h in result["history"] if "loss" in h] == [1, 2, 3, 4, 5, 6]  # each step once


def test_checkpoint_on_a_full_disk_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save, calls = torch.save, {"n": 0}

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the checkpoint of step 4
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, NO_SPACE)
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(InputError, match=f"{NO_SPACE}; the previous checkpoint stays"):
        _train(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert _checkpoint_step(tmp_path) == 2  # still loadable
    assert not (tmp_path / "checkpoint" / "state.tmp").exists()  # the partial file is not left behind
    _resumes_to_the_end(tmp_path)


def test_checkpoint_on_a_full_disk_real(small_disk: Path) -> None:
    out_dir = small_disk / "run"
    filler: list[Path] = []

    def on_step(info: dict[str, Any]) -> None:
        if info["step"] == 3:  # after the checkpoint of step 2: the one of step 4 finds no space
            filler.append(fill(small_disk))

    with pytest.raises(InputError, match=NO_SPACE):
        _train(out_dir, on_step)
    filler[0].unlink()
    assert _checkpoint_step(out_dir) == 2
    assert not (out_dir / "checkpoint" / "state.tmp").exists()
    _resumes_to_the_end(out_dir)


# --- a batch -------------------------------------------------------------------------------------


def _items(n: int) -> list[tuple[str, dict[str, Any]]]:
    text = "A long enough claim about masks and droplet spread, written out at some length. " * 4
    return [(f"c{i}", {"id": f"c{i}", "claim": f"{text}{i}", "evidence": ["A study."]}) for i in range(n)]


def _verifier() -> Verifier:
    return Verifier(PROMPT_ONLY, backends={"default": FakeBackend()})


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_batch_on_a_full_disk_real(small_disk: Path) -> None:
    out = small_disk / "out.jsonl"
    run_batch(_verifier(), _items(3), out)  # an earlier run
    filler = fill(small_disk)
    with pytest.raises(InputError, match=f"cannot write {out}: {NO_SPACE}"):
        run_batch(_verifier(), _items(40), out)
    filler.unlink()
    repair_tail(out)  # a line the full disk cut short is dropped
    assert {"c0", "c1", "c2"} <= done_ids(out)  # the earlier run's lines stay
    summary = run_batch(_verifier(), _items(40), out)
    assert sorted(_ids(out)) == sorted(f"c{i}" for i in range(40)) and summary.skipped >= 3


# --- a run store ---------------------------------------------------------------------------------


def _row(item: str) -> PredictionRow:
    return PredictionRow("a", item, "Yes", "Yes", {"Yes": 1.0}, None, "x" * 2000, [], "t@1#0", 0.0, 1, 1)


def test_run_store_on_a_full_disk_real(small_disk: Path) -> None:
    path = small_disk / "runs.sqlite"
    store = RunStore(path)
    for i in range(5):
        store.add("t", _row(f"i{i}"))
    filler = fill(small_disk)
    with pytest.raises(InputError, match="database or disk is full; the predictions committed before are kept"):
        for i in range(5, 500):
            store.add("t", _row(f"i{i}"))
    store.close()
    filler.unlink()
    again = RunStore(path)
    committed = {r.item_id for r in again.predictions("t")}
    assert {f"i{i}" for i in range(5)} <= committed
    again.add("t", _row("after"))  # writable again once there is space
    assert "after" in {r.item_id for r in again.predictions("t")}
    again.close()

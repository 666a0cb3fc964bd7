"""The shared training loop and what the trainers share: the learning-rate schedule, resume after a
crash (also from a checkpoint of prompt tuning's old loop), the dev-threshold search and the bootstrap CI."""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from claimflow.finetune.loop import LoopSettings, ResumableLoop, warmup_cosine  # noqa: E402


def _old_factor(s: int, warmup_steps: int, max_steps: int) -> float:
    """The hand-written schedule of the loops before (loop.py and prompt_tuning.py), verbatim."""
    return min(1.0, (s + 1) / max(warmup_steps, 1)) * max(
        0.0, 0.5 * (1 + math.cos(math.pi * min(s, max_steps) / max_steps))
    )


@pytest.mark.parametrize(("warmup", "max_steps"), [(20, 300), (30, 1500), (0, 7), (1, 5), (10, 4)])
def test_the_schedule_gives_the_old_learning_rates_step_by_step_and_after_a_resume(warmup: int, max_steps: int) -> None:
    def schedule() -> Any:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.03)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup, max_steps))

    expected = [0.03 * _old_factor(s, warmup, max_steps) for s in range(max_steps + 1)]
    assert all(warmup_cosine(s, warmup, max_steps) == _old_factor(s, warmup, max_steps) for s in range(max_steps + 1))
    with warnings.catch_warnings():  # stepping the schedule alone, as the loop does when it resumes
        warnings.simplefilter("ignore", UserWarning)
        straight, seen = schedule(), []
        for _ in range(max_steps + 1):
            seen.append(straight.get_last_lr()[0])
            straight.step()
        resumed = schedule()
        for _ in range(max_steps // 2):
            resumed.step()
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert resumed.get_last_lr()[0] == pytest.approx(expected[max_steps // 2], rel=1e-12, abs=1e-15)


class _Tiny(torch.nn.Module):
    """A frozen linear layer over a trainable 'soft prompt' vector: a regression to a fixed target."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frozen = torch.nn.Linear(4, 1)
        self.frozen.requires_grad_(False)
        self.prompt = torch.nn.Parameter(torch.zeros(4))

    def loss(self, indices: list[int], x: Any, y: Any) -> Any:
        return ((self.frozen(x[indices] + self.prompt).squeeze(-1) - y[indices]) ** 2).mean()


def _run(
    out: Path, crash_at: int | None = None, max_steps: int = 9, saved: list[int] | None = None, **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 4, generator=generator), torch.randn(10, generator=generator)
    model = _Tiny()
    if (out / "checkpoint" / "state.pt").exists():
        model.prompt.data.fill_(123.0)  # what a resume must overwrite
    settings = LoopSettings(
        batch_size=3, warmup_steps=2, max_steps=max_steps, eval_every=3, checkpoint_every=2, patience=9
    )

    def batch_loss(indices: Any) -> Any:
        if crash_at is not None and loop_state["calls"] == crash_at:
            raise KeyboardInterrupt
        loop_state["calls"] += 1
        return model.loss(list(indices), x, y)

    loop_state = {"calls": 0}
    loop = ResumableLoop(model, settings, out, **kwargs)
    record = saved if saved is not None else []
    summary = loop.run(
        10, batch_loss, lambda: {"score": -float(model.loss(list(range(10)), x, y))}, lambda m: record.append(1)
    )
    return summary, model.prompt.detach().clone()


def test_a_run_resumed_after_a_crash_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    straight, expected = _run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", crash_at=5)  # checkpoint at step 4
    resumed, prompt = _run(tmp_path / "b")
    assert resumed["resumed"] and not straight["resumed"]
    assert [h["step"] for h in resumed["history"] if "loss" in h] == list(range(1, 10))
    assert torch.equal(prompt, expected)
    assert resumed["best_step"] == straight["best_step"]


def test_a_run_resumed_with_max_steps_lowered_to_its_checkpoint_is_evaluated_and_saved(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, crash_at=2)  # checkpoint at step 2, before the first evaluation (step 3)
    saved: list[int] = []
    summary, _ = _run(tmp_path, max_steps=2, saved=saved)  # nothing left to train
    assert summary["resumed"] and summary["steps"] == 2 and summary["best_step"] == 2
    assert saved == [1] and "score" in summary["best_dev"]


def test_a_checkpoint_of_the_old_prompt_tuning_loop_resumes(tmp_path: Path) -> None:
    """The old layout: the run state at the top level, the soft prompt under ``prompt``."""
    from claimflow.finetune.prompt_tuning import upgrade_old_checkpoint

    _run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", crash_at=7)  # checkpoint at step 6, after the evaluations at 3 and 6
    path = tmp_path / "b" / "checkpoint" / "state.pt"
    new = torch.load(path, weights_only=False)
    state = new["state"]
    history = [
        {k: v for k, v in h.items() if k != "score"} | ({"dev_f1": 0.1, "dev_f1_tuned": h["score"], "threshold": 0.4})
        if "score" in h
        else h
        for h in state["history"]
    ]
    old = {
        "step": state["step"],
        "best_f1": state["best_score"],
        "best_step": state["best_step"],
        "best_threshold": 0.4,
        "bad_evals": state["bad_evals"],
        "history": history,
        "train_seconds": state["train_seconds"],
        "prompt": new["params"]["prompt"],
        "optimizer": new["optimizer"],
        "torch_rng": new["torch_rng"],
    }
    torch.save(old, path)
    upgraded = upgrade_old_checkpoint(torch.load(path, weights_only=False), "prompt")
    assert upgraded["state"]["best_metrics"] == {
        "score": state["best_score"],
        "metric": "dev_f1_tuned",
        "dev_f1": 0.1,
        "dev_f1_tuned": state["best_score"],
        "threshold": 0.4,
    }
    assert upgrade_old_checkpoint(upgraded, "prompt") is upgraded

    summary, prompt = _run(tmp_path / "b", upgrade_checkpoint=lambda saved: upgrade_old_checkpoint(saved, "prompt"))
    _, expected = _run(tmp_path / "c")
    assert summary["resumed"] and summary["steps"] == 9
    assert torch.equal(prompt, expected)


def test_an_old_checkpoint_saved_before_any_evaluation_upgrades_with_no_best() -> None:
    from claimflow.finetune.prompt_tuning import upgrade_old_checkpoint

    old = {
        "step": 2,
        "best_f1": -1.0,
        "best_step": 0,
        "best_threshold": 0.5,
        "bad_evals": 0,
        "history": [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}],
        "train_seconds": 0.5,
        "prompt": torch.zeros(3),
        "optimizer": {},
        "torch_rng": torch.get_rng_state(),
    }
    state = upgrade_old_checkpoint(old, "p")["state"]
    assert state["best_score"] == -math.inf and state["best_metrics"] == {} and state["step"] == 2
    assert set(state) == {"step", "best_score", "best_step", "best_metrics", "bad_evals", "history", "train_seconds"}


def _brute_force_threshold(probs: list[float], gold: list[int]) -> tuple[float, float, float]:
    """The old sweep, verbatim: F1 by ``f1_score`` at each of 0.05 ... 0.95, ties nearest 0.5."""
    from sklearn.metrics import f1_score

    y = [1 if g == 0 else 0 for g in gold]

    def f1_at(t: float) -> float:
        return float(f1_score(y, [1 if p >= t else 0 for p in probs], zero_division=0.0))

    best_t = max((i / 100 for i in range(5, 96)), key=lambda t: (f1_at(t), -abs(t - 0.5)))
    return f1_at(0.5), best_t, f1_at(best_t)


def _cases() -> list[tuple[list[float], list[int]]]:
    rng = random.Random(7)
    cases = []
    for n in (1, 2, 5, 13, 60):
        for _ in range(3):
            gold = [rng.randint(0, 1) for _ in range(n)]
            shift = rng.choice([0.0, 0.2, -0.2])
            probs = [min(1.0, max(0.0, rng.random() * 0.6 + (0.4 if g == 0 else 0.0) + shift)) for g in gold]
            cases.append((probs, gold))
            cases.append(([round(p, 2) for p in probs], gold))  # scores on the candidate thresholds
            cases.append(([round(p, 1) for p in probs], gold))  # many ties
    cases += [([0.3, 0.3, 0.7], [1, 1, 1]), ([0.3, 0.6, 0.9], [0, 0, 0]), ([0.99, 0.01], [1, 0]), ([0.5], [0])]
    return cases


@pytest.mark.parametrize(("probs", "gold"), _cases())
def test_the_threshold_search_on_the_pr_curve_equals_the_brute_force_sweep(probs: list[float], gold: list[int]) -> None:
    from claimflow.finetune.prompt_tuning import _f1_and_threshold

    assert _f1_and_threshold(probs, gold) == _brute_force_threshold(probs, gold)


def test_the_evaluation_ci_is_the_old_inline_bootstrap() -> None:
    """``evaluate_artifact`` and the A/B report now call ``bootstrap_ci``: same numbers as their copies."""
    from scipy import stats as sps

    from claimflow.evals.metrics import positive_f1
    from claimflow.evals.stats import bootstrap_ci

    rng = random.Random(3)
    gold = [rng.choice(["Yes", "No"]) for _ in range(60)]
    pred = [g if rng.random() < 0.7 else rng.choice(["Yes", "No", None]) for g in gold]
    f1 = positive_f1("Yes")
    g, p = np.asarray(gold, dtype=object), np.asarray(pred, dtype=object)
    for n, seed in ((200, 0), (300, 5)):
        old = sps.bootstrap(
            (np.arange(len(gold)),),
            lambda i: f1(list(g[i.astype(int)]), list(p[i.astype(int)])),
            n_resamples=n,
            vectorized=False,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        assert bootstrap_ci(gold, pred, f1, n_resamples=n, seed=seed) == (float(old.low), float(old.high))


def test_a_best_folder_swapped_in_survives_a_kill_between_any_two_renames(tmp_path: Path) -> None:
    from claimflow.finetune.loop import recover_folder, swap_in_folder

    final, tmp, old = tmp_path / "best", tmp_path / "best.tmp", tmp_path / "best.old"

    def folder(path: Path, text: str) -> None:
        path.mkdir()
        (path / "weights").write_text(text)

    folder(final, "v1")
    folder(tmp, "v2")
    swap_in_folder(tmp, final)
    assert (final / "weights").read_text() == "v2" and not tmp.exists() and not old.exists()
    # killed after the old one was moved aside, before the new one was moved in
    folder(tmp, "v3")
    final.replace(old)
    recover_folder(final)
    assert (final / "weights").read_text() == "v3" and not old.exists()
    # killed after the new one was moved in, before the old one was removed
    folder(old, "v2")
    recover_folder(final)
    assert (final / "weights").read_text() == "v3" and not old.exists()
    recover_folder(final)  # nothing to do
    assert (final / "weights").read_text() == "v3"

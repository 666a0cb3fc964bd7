"""Wall time of `claimflow eval report` on a synthetic A/B run: 8 variants x 318 items x 2,000 resamples.

    .venv/bin/python benchmarks/eval_report.py [--variants 8] [--items 318] [--resamples 2000] [--slow-resamples 200]

Builds a run store in a temporary folder (3-label stance stage, macro-F1, random predictions at 40-80%
accuracy with probabilities), then times ``build_report`` + Markdown + HTML as the CLI runs them
(median of ``--repeats``). ``--slow-resamples N`` also times the per-resample scikit-learn path (the
metric wrapped as a plain function) and the vectorised path side by side at N resamples and checks
both reports give the same numbers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claimflow.evals import report as report_module
from claimflow.evals.metrics import MetricFn
from claimflow.evals.store import PredictionRow, RunStore

LABELS = ("SUPPORT", "REFUTE", "NEUTRAL")


def make_store(path: Path, variants: int, items: int, resamples: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    run_id = f"bench-{variants}x{items}x{resamples}"
    spec = {
        "name": run_id,
        "stage": "evidence_stance",
        "dataset": {"name": "healthver", "split": "dev"},
        "variants": [{"name": f"v{k}", "encoder": f"runs/v{k}"} for k in range(variants)],
        "bootstrap_resamples": resamples,
        "seed": 0,
    }
    store = RunStore(path)
    store.start_run(run_id, spec, "bench", None)
    gold = rng.choice(LABELS, items)
    for k in range(variants):
        right = rng.random(items) < 0.4 + 0.4 * k / max(variants - 1, 1)
        for i in range(items):
            label = str(gold[i]) if right[i] else str(rng.choice(LABELS))
            p = rng.dirichlet(np.ones(3))
            p = np.sort(p)[::-1]
            order = [label, *[x for x in LABELS if x != label]]
            store.add(
                run_id,
                PredictionRow(
                    f"v{k}",
                    f"item{i:04d}",
                    str(gold[i]),
                    label,
                    dict(zip(order, p.tolist(), strict=True)),
                    None,
                    None,
                    [],
                    "bench@1#0",
                    0.01,
                    1,
                    10,
                ),
            )
    store.close()
    return run_id


def timed_report(path: Path, run_id: str) -> tuple[float, Any]:
    start = time.perf_counter()
    store = RunStore(path)
    built = report_module.build_report(store, [run_id])
    report_module.to_markdown(built)
    report_module.to_html(built)
    store.close()
    return time.perf_counter() - start, built


def slow_metric_fn(original: Callable[[str, tuple[str, ...]], MetricFn]) -> Callable[[str, tuple[str, ...]], MetricFn]:
    def plain(name: str, labels: tuple[str, ...]) -> MetricFn:
        metric = original(name, labels)

        def per_resample(gold: Sequence[str], pred: Sequence[str | None]) -> float:
            return metric(gold, pred)

        per_resample.__name__ = getattr(metric, "__name__", name)
        return per_resample

    return plain


def numbers(built: Any) -> list[float]:
    out = []
    for v in built.variants:
        out += [v.metric, *v.ci]
    for c in built.comparisons:
        out += [c.difference, *c.ci, c.p_permutation, c.p_holm]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--items", type=int, default=318)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow-resamples", type=int, default=0, help="also time the per-resample path at N")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.sqlite"
        run_id = make_store(path, args.variants, args.items, args.resamples)
        timed_report(path, run_id)  # warm-up: imports, matplotlib, templates
        times = [timed_report(path, run_id)[0] for _ in range(args.repeats)]
        print(
            f"eval report, {args.variants} variants x {args.resamples} resamples x {args.items} items: "
            f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}; "
            f"{args.repeats} runs after 1 warm-up)"
        )
        if args.slow_resamples:
            small = make_store(Path(folder) / "small.sqlite", args.variants, args.items, args.slow_resamples)
            small_path = Path(folder) / "small.sqlite"
            fast_times, slow_times = [], []
            original = report_module._metric_fn
            for _ in range(args.repeats):  # side by side, alternating
                fast_s, fast = timed_report(small_path, small)
                report_module._metric_fn = slow_metric_fn(original)  # type: ignore[assignment]
                try:
                    slow_s, slow = timed_report(small_path, small)
                finally:
                    report_module._metric_fn = original
                fast_times.append(fast_s)
                slow_times.append(slow_s)
                gap = max(abs(a - b) for a, b in zip(numbers(fast), numbers(slow), strict=True))
            ratios = [s / f for s, f in zip(slow_times, fast_times, strict=True)]
            print(
                f"at {args.slow_resamples} resamples: per-resample path median {statistics.median(slow_times):.2f} s,"
                f" vectorised {statistics.median(fast_times):.2f} s, ratio {statistics.median(ratios):.1f}x"
                f" (largest difference between the two reports' numbers: {gap:.2g})"
            )


if __name__ == "__main__":
    main()

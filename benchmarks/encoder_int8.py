"""The trained encoders on CPU, fp32 against torch int8 dynamic quantisation of their Linear layers.

    .venv/bin/python benchmarks/encoder_int8.py [--sample 300] [--repeats 5]

For each shipped encoder (the check-worthiness classifier on CheckThat! 2024 dev-test, F1 of Yes;
the multi-task evidence model's stance head on the HealthVer dev claims its split held out, macro-F1)
it scores the same items with the fp32 model (LoRA merged) and with
``torch.ao.quantization.quantize_dynamic`` (qint8 weights, Linear layers; no new dependency), then
times both side by side, interleaved: one sentence alone (what `verify`'s gate runs) and a batch of
the 32 first items, median of ``--repeats``. Accuracy changes come with a paired bootstrap CI.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claimflow.evals.metrics import macro_f1, positive_f1
from claimflow.evals.stats import paired_bootstrap

sys.path.insert(0, str(Path(__file__).parent))
from evidence_model import eval_sets  # the same dev sets as the evidence-model benchmark

ARTIFACTS = Path(__file__).resolve().parents[1] / "src" / "claimflow" / "artifacts"


def quantized(model: Any) -> Any:
    import torch

    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(
    name: str,
    holder: Any,
    predict: Callable[[list[Any]], list[str | None]],
    items: list[Any],
    gold: list[str],
    metric: Any,
    repeats: int,
) -> None:
    fp32 = holder.model
    if hasattr(fp32, "merge_and_unload"):
        fp32 = fp32.merge_and_unload()
    int8 = quantized(fp32).eval()
    models = {"fp32": fp32.eval(), "int8": int8}
    preds: dict[str, list[str | None]] = {}
    for key, model in models.items():
        holder.model = model
        getattr(holder, "prefetched", {}).clear()
        preds[key] = predict(items)
    times: dict[str, dict[str, list[float]]] = {k: {"one": [], "batch": []} for k in models}
    for _ in range(repeats):
        for key, model in models.items():
            holder.model = model
            getattr(holder, "prefetched", {}).clear()
            times[key]["one"].append(timed(lambda: predict(items[:1])))
            getattr(holder, "prefetched", {}).clear()
            times[key]["batch"].append(timed(lambda: predict(items[:32])))
    holder.model = fp32
    boot = paired_bootstrap(gold, preds["int8"], preds["fp32"], metric, n_resamples=2000, seed=0)
    agree = sum(a == b for a, b in zip(preds["int8"], preds["fp32"], strict=True)) / len(items)
    print(f"\n{name}: {len(items)} items, metric {boot.metric}")
    print("| model | metric | 1 sentence ms (median) | batch of 32 ms (median) |")
    print("|---|---|---|---|")
    for key in models:
        value = boot.metric_b if key == "fp32" else boot.metric_a
        one, batch = statistics.median(times[key]["one"]) * 1e3, statistics.median(times[key]["batch"]) * 1e3
        print(f"| {key} | {value:.4f} | {one:.1f} | {batch:.1f} |")
    speed_one = statistics.median(a / b for a, b in zip(times["fp32"]["one"], times["int8"]["one"], strict=True))
    speed_batch = statistics.median(a / b for a, b in zip(times["fp32"]["batch"], times["int8"]["batch"], strict=True))
    print(
        f"int8 - fp32: {boot.difference:+.4f} [{boot.ci_low:+.4f}, {boot.ci_high:+.4f}] (paired bootstrap 95% CI); "
        f"same label on {agree:.1%} of items; speed-up (paired ratios, median): 1 sentence {speed_one:.2f}x, "
        f"batch {speed_batch:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=300, help="HealthVer pairs (seeded); CT24 dev-test: all 318")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    import torch

    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.multitask import MultitaskEncoder

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, machine shared with other jobs")
    sets = eval_sets(args.data)
    claims = sets["ct24-dev-test"]
    cw = EncoderClassifier(ARTIFACTS / "checkworthiness-encoder")
    compare(
        "check-worthiness encoder (CT24 dev-test)",
        cw,
        lambda xs: [s.label for s in cw.predict([{"claim": x.text_a} for x in xs])],
        claims,
        [x.label for x in claims],
        positive_f1("Yes"),
        args.repeats,
    )
    pairs = sets["healthver"]
    pairs = random.Random(0).sample(pairs, min(args.sample, len(pairs)))
    mt = MultitaskEncoder(ARTIFACTS / "evidence-multitask")
    stance = mt.head("stance")
    compare(
        "evidence model, stance head (HealthVer held-out dev)",
        mt,
        lambda xs: [s.label for s in stance.predict([{"claim": x.text_a, "sentence": x.text_b} for x in xs])],
        pairs,
        [x.label for x in pairs],
        macro_f1(("SUPPORT", "REFUTE", "NEUTRAL")),
        args.repeats,
    )


if __name__ == "__main__":
    main()

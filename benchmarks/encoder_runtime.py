"""The trained encoders on CPU by runtime: torch fp32 (the default), torch int8, ONNX Runtime fp32 and int8.

    .venv/bin/python benchmarks/encoder_runtime.py [--sample 300] [--repeats 5] [--cache DIR]

The same items through each of the four (``encoders: {runtime, quantize}``): the check-worthiness
classifier on CheckThat! 2024 dev-test (F1 of Yes, all 318 sentences) and the multi-task evidence
model's stance head on its three held-out dev sets (macro-F1, ``--sample`` seeded pairs each). Accuracy:
each variant against torch fp32, paired bootstrap CI, share of identical labels. Speed: one sentence
alone (what `verify`'s gate runs) and a batch of 32, the variants interleaved, ``--repeats`` rounds,
median of the per-round ratios torch-fp32 / variant. Load: seconds to build each predictor in this
process (torch already imported by then, so ONNX's saving of the torch import is startup.py's row).
The ONNX graphs are exported into ``--cache`` (default: the model cache) on first use, before timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claimflow.evals.metrics import macro_f1, positive_f1
from claimflow.evals.stats import paired_bootstrap
from claimflow.models.store import ModelStore

sys.path.insert(0, str(Path(__file__).parent))
from evidence_model import eval_sets  # the same dev sets as the evidence-model benchmark

ARTIFACTS = Path(__file__).resolve().parents[1] / "src" / "claimflow" / "artifacts"
VARIANTS = (("torch", "none"), ("torch", "int8"), ("onnx", "none"), ("onnx", "int8"))


def name(runtime: str, quantize: str) -> str:
    return f"{runtime} {'fp32' if quantize == 'none' else quantize}"


def build(cls: Any, artifact: Path, runtime: str, quantize: str, store: ModelStore) -> tuple[Any, float]:
    from claimflow.predictors.trained import quantize_int8

    start = time.perf_counter()
    onnx = runtime == "onnx"
    model = cls(artifact, store=store, runtime=runtime, quantize=quantize if onnx else "none")
    if not onnx and quantize == "int8":
        quantize_int8(model)
    return model, time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(
    title: str,
    models: dict[str, Any],
    loads: dict[str, float],
    predict: Callable[[Any, list[Any]], list[str | None]],
    sets: dict[str, list[Any]],
    metric: Any,
    repeats: int,
) -> None:
    base = name("torch", "none")
    print(f"\n### {title}\n")
    print("| set | variant | metric | Δ vs torch fp32 [95% CI] | same label |")
    print("|---|---|---|---|---|")
    for set_name, items in sets.items():
        gold = [x.label for x in items]
        preds = {key: predict(model, items) for key, model in models.items()}
        for key in models:
            boot = paired_bootstrap(gold, preds[key], preds[base], metric, n_resamples=2000, seed=0)
            same = sum(a == b for a, b in zip(preds[key], preds[base], strict=True)) / len(items)
            delta = "" if key == base else f"{boot.difference:+.4f} [{boot.ci_low:+.4f}, {boot.ci_high:+.4f}]"
            print(f"| {set_name} ({len(items)}) | {key} | {boot.metric_a:.4f} | {delta} | {same:.1%} |")
    items = next(iter(sets.values()))
    times: dict[str, dict[str, list[float]]] = {k: {"one": [], "batch": []} for k in models}
    for _ in range(repeats):
        for key, model in models.items():
            for size, label in ((1, "one"), (32, "batch")):
                getattr(model, "clear_prefetched", lambda: None)()
                times[key][label].append(timed(lambda m=model, n=size: predict(m, items[:n])))
    print("\n| variant | load s | 1 sentence ms (median) | speed-up | batch of 32 ms (median) | speed-up |")
    print("|---|---|---|---|---|---|")
    for key in models:
        row = [f"{loads[key]:.2f}"]
        for label in ("one", "batch"):
            ratio = statistics.median(a / b for a, b in zip(times[base][label], times[key][label], strict=True))
            row += [f"{statistics.median(times[key][label]) * 1e3:.1f}", f"{ratio:.2f}x"]
        print(f"| {key} | " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=300, help="stance pairs per set (seeded); CT24: all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="model cache for the ONNX graphs")
    args = parser.parse_args()
    import os

    import onnxruntime
    import torch

    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.multitask import MultitaskEncoder

    store = ModelStore(args.cache)
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
        f"{os.cpu_count()} cores"
    )
    sets = eval_sets(args.data)
    for cls, artifact in ((EncoderClassifier, "checkworthiness-encoder"), (MultitaskEncoder, "evidence-multitask")):
        for runtime, quantize in VARIANTS[2:]:  # export (once) before anything is timed
            build(cls, ARTIFACTS / artifact, runtime, quantize, store)
    cw, cw_loads = {}, {}
    for runtime, quantize in VARIANTS:
        cw[name(runtime, quantize)], cw_loads[name(runtime, quantize)] = build(
            EncoderClassifier, ARTIFACTS / "checkworthiness-encoder", runtime, quantize, store
        )
    compare(
        "check-worthiness encoder",
        cw,
        cw_loads,
        lambda m, xs: [s.label for s in m.predict([{"claim": x.text_a} for x in xs])],
        {"ct24-dev-test": sets["ct24-dev-test"]},
        positive_f1("Yes"),
        args.repeats,
    )
    mt, mt_loads = {}, {}
    for runtime, quantize in VARIANTS:
        model, mt_loads[name(runtime, quantize)] = build(
            MultitaskEncoder, ARTIFACTS / "evidence-multitask", runtime, quantize, store
        )
        mt[name(runtime, quantize)] = model.head("stance")
    stance_sets = {}
    for set_name in ("healthver", "climate_fever", "scifact"):
        pairs = sets[set_name]
        stance_sets[set_name] = random.Random(0).sample(pairs, min(args.sample, len(pairs)))
    compare(
        "evidence model, stance head",
        mt,
        mt_loads,
        lambda m, xs: [s.label for s in m.predict([{"claim": x.text_a, "sentence": x.text_b} for x in xs])],
        stance_sets,
        macro_f1(("SUPPORT", "REFUTE", "NEUTRAL")),
        args.repeats,
    )


if __name__ == "__main__":
    main()

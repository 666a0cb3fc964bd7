"""Check-worthiness predictors and their averages on CheckThat! 2024 dev and dev-test, with the gap.

    B=".venv/bin/python benchmarks/checkworthiness_ensemble.py"
    $B score --name encoder --encoder src/claimflow/artifacts/checkworthiness-encoder
    $B score --name mtl-claim --multitask src/claimflow/artifacts/evidence-multitask
    $B score --name qwen15-long --prompt checkworthiness_long@1 --model qwen2.5-coder-1.5b-instruct
    $B report --baseline encoder --mean encoder+mtl-claim encoder+mtl-claim+qwen15-long

``score`` keeps each predictor's P(Yes) per sentence in ``--out/<name>.json`` (a set already there is
not scored again). ``report`` reads F1(Yes) at the predictors' own decision rule (P(Yes) >= 0.5; the
prompt's label words argmax) and, for ``--mean A+B[+C]``, of the unweighted mean of their P(Yes) at 0.5:
no weight or threshold is fitted, so dev and dev-test are both honest held-out readings. The issue's
question is transfer to new debates, so each row also gives the dev / dev-test gap. CIs: percentile
bootstrap (2,000); Δ: paired bootstrap against ``--baseline``; p: paired approximate randomization
(999), Holm-corrected per set.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claimflow.evals.metrics import positive_f1
from claimflow.evals.stats import bootstrap_ci, holm_correction, paired_bootstrap, permutation_test

SETS = ("dev", "dev-test")


def _sentences(split: str, data_dir: Path | None) -> tuple[list[str], list[str]]:
    from claimflow.evals.datasets import load_dataset

    examples = load_dataset("checkthat2024_en", split, data_dir)
    return [ex.claim for ex in examples], [str(ex.label) for ex in examples]


def _scorer(args: argparse.Namespace) -> Any:
    """A function: sentences -> P(Yes) each."""
    if args.encoder:
        from claimflow.predictors.encoder import EncoderClassifier

        encoder = EncoderClassifier(args.encoder, threads=args.threads, batch_size=32)
        yes = list(encoder.labels).index("Yes")
        return lambda texts: [row[yes] for row in encoder.probabilities([{"claim": t} for t in texts])]
    if args.multitask:
        from claimflow.predictors.multitask import MultitaskEncoder

        model = MultitaskEncoder(args.multitask, batch_size=32, threads=args.threads)
        yes = list(model.labels["claim"]).index("Yes")
        return lambda texts: [row[yes] for row in model.probabilities(["claim"], [(t, None) for t in texts])["claim"]]
    from claimflow.config import BackendConfig
    from claimflow.llm.factory import make_backend
    from claimflow.models.store import ModelStore
    from claimflow.predictors.prompt import PromptClassifier
    from claimflow.prompts.registry import TemplateRegistry

    backend = make_backend(BackendConfig(model=args.model, threads=args.threads), ModelStore())
    classifier = PromptClassifier(TemplateRegistry().get(args.prompt), backend, batch_size=16)
    return lambda texts: [s.probabilities.get("Yes", 0.0) for s in classifier.predict([{"claim": t} for t in texts])]


def score(args: argparse.Namespace) -> None:
    out = args.out / f"{args.name}.json"
    done: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    fn = _scorer(args)
    for split in SETS:
        if split in done:
            continue
        texts, gold = _sentences(split, args.data_dir)
        start = time.perf_counter()
        p_yes: list[float] = []
        for i in range(0, len(texts), 64):  # in chunks, so the progress is visible in the log
            p_yes += [round(float(p), 6) for p in fn(texts[i : i + 64])]
        done[split] = {"gold": gold, "p_yes": p_yes, "ms_per_item": 1000 * (time.perf_counter() - start) / len(texts)}
        args.out.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(done), encoding="utf-8")
        print(f"{args.name} {split}: {len(texts)} sentences, {done[split]['ms_per_item']:.1f} ms each", flush=True)


def _labels(p_yes: Sequence[float]) -> list[str]:
    return ["Yes" if p >= 0.5 else "No" for p in p_yes]


def report(args: argparse.Namespace) -> None:
    runs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.out.glob("*.json"))}
    systems: dict[str, dict[str, list[float]]] = {
        name: {s: run[s]["p_yes"] for s in SETS} for name, run in runs.items()
    }
    members = {name: [name] for name in runs}
    for combo in args.mean:
        parts = combo.split("+")
        members[f"mean({', '.join(parts)})"] = parts
        systems[f"mean({', '.join(parts)})"] = {
            s: list(np.mean([runs[p][s]["p_yes"] for p in parts], axis=0)) for s in SETS
        }
    metric = positive_f1("Yes")
    values: dict[str, dict[str, float]] = {name: {} for name in systems}
    for split in SETS:
        gold = next(iter(runs.values()))[split]["gold"]
        base = _labels(systems[args.baseline][split])
        rows, pvalues = [], {}
        for name, by_set in systems.items():
            pred = _labels(by_set[split])
            value = metric(gold, pred)
            values[name][split] = value
            low, high = bootstrap_ci(gold, pred, metric, n_resamples=2000)
            diff = ""
            if name != args.baseline:
                boot = paired_bootstrap(gold, pred, base, metric)
                pvalues[name] = permutation_test(gold, pred, base, metric, n_resamples=999).p_value
                diff = f"{boot.difference:+.3f} [{boot.ci_low:+.3f}, {boot.ci_high:+.3f}]"
            rows.append([name, f"{value:.3f}", f"[{low:.3f}, {high:.3f}]", diff])
        adjusted = dict(zip(pvalues, holm_correction(list(pvalues.values())).adjusted, strict=True))
        print(f"\n#### CT24 {split} (F1(Yes), n={len(gold)})\n")
        print(f"| predictor | F1(Yes) | 95% CI | Δ vs {args.baseline} [95% CI] | p (Holm) |\n|---|---|---|---|---|")
        for row in rows:
            p_text = f"{adjusted[row[0]]:.4f}" if row[0] in adjusted else ""
            print("| " + " | ".join([*row, p_text]) + " |")
    print("\n#### Dev / dev-test gap\n\n| predictor | dev | dev-test | gap | ms/sentence |\n|---|---|---|---|---|")
    for name, v in values.items():
        ms = " + ".join(f"{runs[p]['dev-test']['ms_per_item']:.0f}" for p in members[name])
        print(f"| {name} | {v['dev']:.3f} | {v['dev-test']:.3f} | {v['dev'] - v['dev-test']:+.3f} | {ms} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/checkworthiness"))
    parser.add_argument("--data-dir", type=Path, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--name", required=True)
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--encoder", type=Path)
    group.add_argument("--multitask", type=Path)
    group.add_argument("--prompt")
    s.add_argument("--model", default="smollm2-135m-instruct", help="--prompt: the store model (llama.cpp)")
    s.add_argument("--threads", type=int, default=None)
    r = sub.add_parser("report")
    r.add_argument("--baseline", default="encoder")
    r.add_argument("--mean", nargs="*", default=[], help="NAME+NAME[+NAME]: the mean of their P(Yes)")
    args = parser.parse_args()
    score(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    main()

"""Veracity predictors on COVID-Fact dev, side by side: macro-F1 with bootstrap CIs, paired tests, timing.

    .venv/bin/python benchmarks/veracity.py [--runs runs/veracity] [--dev-file runs/distill/covidfact-dev.jsonl]

Reads the ``result.json`` and ``predictions-dev.json`` of each training run under ``--runs``
(``claimflow finetune classifier|lora ... --evaluate-on dev``) and adds (a) the zero-shot GLM verdict:
the default pipeline's prompted veracity stage (``veracity_justifications@1`` on SmolLM2-135M,
llama.cpp) over the same distilled justifications, its three-way distribution restricted to
COVID-Fact's two labels. Its predictions are cached in ``--runs/zeroshot/predictions-dev.json``.
Prints a Markdown table; each row is compared with the encoder on claim + justifications
(paired bootstrap of the macro-F1 difference).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from claimflow.evals.metrics import macro_f1
from claimflow.evals.stats import bootstrap_ci, paired_bootstrap
from claimflow.finetune.classifier import ClassifierData, load_rows

LABELS = ("SUPPORTED", "REFUTED")
REFERENCE = "encoder-justifications-full"


def zero_shot(dev_file: Path, out: Path) -> dict[str, Any]:
    cached = out / "predictions-dev.json"
    if cached.exists():
        return dict(json.loads(cached.read_text(encoding="utf-8")))
    from claimflow.config import BackendConfig
    from claimflow.llm.factory import make_backend
    from claimflow.models.store import ModelStore
    from claimflow.predictors import PromptClassifier
    from claimflow.prompts.registry import TemplateRegistry

    rows = load_rows(ClassifierData(), "dev", dev_file, None, 0)
    template = TemplateRegistry().get("veracity_justifications@1")
    backend = make_backend(BackendConfig(), ModelStore())
    classifier = PromptClassifier(template, backend)
    start = time.perf_counter()
    scores = classifier.predict([{k: fields[k] for k in template.inputs} for _, fields, _ in rows])
    seconds = time.perf_counter() - start
    preds = [max(LABELS, key=lambda label: s.probabilities.get(label, 0.0)) for s in scores]
    gold = [label for *_, label in rows]
    low, high = bootstrap_ci(gold, preds, macro_f1(LABELS))
    result = {
        "split": "dev",
        "n": len(rows),
        "value": macro_f1(LABELS)(gold, preds),
        "ci95": [low, high],
        "seconds": round(seconds, 2),
        "items_per_second": round(len(rows) / seconds, 2),
        "ids": [i for i, _, _ in rows],
        "predictions": preds,
        "gold": gold,
        "three_way_nei_argmax": sum(s.label == "NOT_ENOUGH_INFO" for s in scores),
    }
    out.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result), encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/veracity"))
    parser.add_argument("--dev-file", type=Path, default=Path("runs/distill/covidfact-dev.jsonl"))
    args = parser.parse_args()

    systems: dict[str, dict[str, Any]] = {"zeroshot-glm": zero_shot(args.dev_file, args.runs / "zeroshot")}
    for run in sorted(p for p in args.runs.iterdir() if (p / "predictions-dev.json").exists()):
        if run.name == "zeroshot":
            continue
        scored = json.loads((run / "predictions-dev.json").read_text(encoding="utf-8"))
        result = json.loads((run / "result.json").read_text(encoding="utf-8"))
        systems[run.name] = {**scored, "train_seconds": result.get("train_seconds"), "steps": result.get("steps")}
    gold_by_id = dict(zip(systems["zeroshot-glm"]["ids"], systems["zeroshot-glm"]["gold"], strict=True))
    metric = macro_f1(LABELS)
    reference = systems.get(REFERENCE)
    print("| system | n | macro-F1 [95% CI] | Δ vs encoder+justifications [95% CI] | train s | items/s |")
    print("|---|---|---|---|---|---|")
    for name, s in systems.items():
        ids = s["ids"]
        gold = [gold_by_id[i] for i in ids]
        delta = ""
        if reference is not None and name != REFERENCE:
            ref_pred = dict(zip(reference["ids"], reference["predictions"], strict=True))
            paired = paired_bootstrap(gold, s["predictions"], [ref_pred[i] for i in ids], metric, n_resamples=2000)
            delta = f"{paired.difference:+.3f} [{paired.ci_low:+.3f}, {paired.ci_high:+.3f}]"
        low, high = s["ci95"]
        print(
            f"| {name} | {len(ids)} | {metric(gold, s['predictions']):.3f} [{low:.3f}, {high:.3f}] | {delta} "
            f"| {s.get('train_seconds') or '-'} | {s.get('items_per_second') or '-'} |"
        )


if __name__ == "__main__":
    main()

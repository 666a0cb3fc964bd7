"""The ELM on distilled justifications (issue #13 (c)-(e) and the ablations), side by side on COVID-Fact dev.

    .venv/bin/python benchmarks/veracity_elm.py [--runs runs/elm] [--dev-file runs/elm/covidfact-dev.jsonl]

Reads the ``predictions-dev.json`` and ``result.json`` of each run under ``--runs``
(``claimflow finetune classifier -c configs/veracity/elm/NAME.yaml --evaluate-on dev``) and adds, on
the same claims, the shipped ``stance_features`` verdict (the default of ``verify``) computed from the
stance outputs stored in the distilled dev rows (the same evidence model; read two-way, COVID-Fact's
labels) and the majority class. Prints the Markdown tables: macro-F1 with bootstrap CIs, the paired
difference from the default (paired bootstrap, approximate-randomization p, Holm over the table), the
cost of each run, and macro-F1 on the claims with and without a generated refuting justification.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from veracity_stances import TWO, comparison_table, fast_macro_f1

from claimflow.evals.stats import paired_bootstrap
from claimflow.finetune.classifier import ClassifierData, load_rows
from claimflow.io import iter_jsonl
from claimflow.predictors.stance_aggregate import StanceFeatureClassifier, scored_stances

DEFAULT = "stance_features (default)"
PAIRS = (
    ("justifications-seed1", "justifications", "(d) seed 1 - seed 0: the same run, another seed"),
    ("justifications", "raw-evidence", "the justifications instead of the raw evidence ((d) - (c))"),
    ("justifications-seed1", "raw-evidence", "the same with (d) seed 1"),
    ("justifications-summary", "summary", "the justifications beside the stance summary ((e) - summary)"),
    ("justifications-summary", "justifications", "the stance summary beside the justifications ((e) - (d))"),
    ("no-support", "justifications", "without the supporting justification"),
    ("no-refute", "justifications", "without the refuting justification"),
)
"""(run, reference, what the difference measures): the paper's questions, paired on the same claims."""
ARTIFACT = Path("src/claimflow/artifacts/veracity-stance-features")


def stance_features(dev_file: Path) -> tuple[dict[str, str], set[str]]:
    """The shipped stance-features verdict of each distilled dev claim, read two-way; the ids whose
    refuting justification was generated (not the fixed "None of the evidence ..." sentence)."""
    classifier = StanceFeatureClassifier(ARTIFACT)
    preds, refuted = {}, set()
    for _, row in iter_jsonl(str(dev_file)):
        if "error" in row:
            continue
        scores = classifier.score(scored_stances(row["stance_probabilities"], row["relevance"]))
        preds[str(row["id"])] = max(TWO, key=lambda label: scores.probabilities.get(label, 0.0))
        if row.get("refute_generated"):
            refuted.add(str(row["id"]))
    return preds, refuted


def runs(folder: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    systems, costs = {}, {}
    for scored in sorted(folder.glob("*/predictions-dev.json")):
        data = json.loads(scored.read_text(encoding="utf-8"))
        result = json.loads((scored.parent / "result.json").read_text(encoding="utf-8"))
        name = scored.parent.name
        systems[name] = dict(zip(data["ids"], data["predictions"], strict=True))
        provenance = json.loads((scored.parent / "best" / "provenance.json").read_text(encoding="utf-8"))
        costs[name] = {
            "inputs": ", ".join(provenance["inputs"]),
            "train_s": result.get("train_seconds"),
            "items_s": data.get("items_per_second"),
        }
    return systems, costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/elm"))
    parser.add_argument("--dev-file", type=Path, default=Path("runs/elm/covidfact-dev.jsonl"))
    args = parser.parse_args()

    rows = load_rows(ClassifierData(), "dev", args.dev_file, None, 0)
    gold = {item_id: label for item_id, _, label in rows}
    systems, costs = runs(args.runs)
    default, refuted = stance_features(args.dev_file)
    systems = {DEFAULT: default, **systems}
    scored = set(gold).intersection(*(set(s) for s in systems.values()))
    majority = max(TWO, key=lambda label: sum(gold[i] == label for i in scored))
    systems["majority class"] = {i: majority for i in scored}
    systems = {name: {i: p for i, p in preds.items() if i in scored} for name, preds in systems.items()}
    lines = comparison_table(f"COVID-Fact dev, {len(scored)} claims", systems, gold, TWO, DEFAULT)

    lines += ["", "| run | inputs | training s (one core) | dev claims / s |", "|---|---|---|---|"]
    for name, cost in costs.items():
        train = f"{cost['train_s']:,.0f}" if cost["train_s"] is not None else "—"
        lines.append(f"| {name} | {cost['inputs']} | {train} | {cost['items_s']} |")

    metric = fast_macro_f1(TWO)
    lines += ["", "| what it measures | Δ macro-F1 [95% CI] |", "|---|---|"]
    for run, reference, what in PAIRS:
        if run in systems and reference in systems:
            ids = sorted(scored)
            g = [gold[i] for i in ids]
            boot = paired_bootstrap(g, [systems[run][i] for i in ids], [systems[reference][i] for i in ids], metric)
            lines.append(f"| {what} | {boot.difference:+.3f} [{boot.ci_low:+.3f}, {boot.ci_high:+.3f}] |")

    subsets = {"with a generated refuting justification": refuted & scored, "without one": scored - refuted}
    lines += ["", "| predictor | " + " | ".join(f"{k} (n={len(v)})" for k, v in subsets.items()) + " |"]
    lines.append("|---|" + "---|" * len(subsets))
    for name, preds in systems.items():
        cells = [f"{metric([gold[i] for i in s], [preds[i] for i in s]):.3f}" for s in map(sorted, subsets.values())]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

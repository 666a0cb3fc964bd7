"""How good are the justifications `verify` writes? Two cheap, label-free measures (issue #13).

    B=".venv/bin/python benchmarks/justification_quality.py"
    $B run --name default --sample 40          # stance + justify on seeded COVID-Fact dev claims (resumable JSONL)
    $B report --name default                   # the measures below, with bootstrap CIs over justifications
    $B run --name qwen05 --config examples/config_justify_qwen05.yaml   # the same claims, another justify model
    $B compare --name qwen05 --baseline default  # paired differences on the same claims and sides

For every *generated* justification (a side with no sentence gets the fixed "none ... supports" text and
is not scored):

- **entailment by its side**: the shipped evidence model's stance of (claim, justification). A supporting
  justification should read as SUPPORT of the claim, a refuting one as REFUTE. Reported: the share whose
  argmax is its side's label, and the mean P(side label).
- **grounding**: the evidence sentence most similar to the justification (TF-IDF cosine over the claim's
  sentences, scikit-learn). Reported: the share whose nearest sentence is one the justification was
  given (its own side), one of the other side's sentences ("cites the other side's evidence as its own"),
  or a sentence of neither side; and the mean cosine to the nearest sentence.
- for reference, the same entailment of the first sentence each justification was given, quoted as it
  is: how much of the side's stance the generation keeps.

No gold label is read: the sample is drawn by index and only claim + evidence reach the pipeline.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

SIDE_LABEL = {"support": "SUPPORT", "refute": "REFUTE"}


def run(args: argparse.Namespace) -> None:
    """stance + justify on a seeded sample; one JSON line per claim, appended (a killed run resumes)."""
    from claimflow import PipelineConfig, Verifier
    from claimflow.evals.datasets import load_dataset

    out = args.out / f"{args.name}.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    seen = {json.loads(line)["id"] for line in lines if line.strip()}
    examples = load_dataset(args.dataset, args.split, args.data_dir)
    chosen = sorted(random.Random(0).sample(range(len(examples)), min(args.sample, len(examples))))
    config = (PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()).with_stages(
        ["evidence_stance", "justify"]
    )
    with Verifier(config) as verifier, out.open("a", encoding="utf-8") as sink:
        for i in chosen:
            ex = examples[i]
            if ex.id in seen or not ex.evidence:
                continue
            start = time.perf_counter()
            result = verifier.verify(ex.claim, ex.evidence, force=True)
            just = result.justifications
            row = {
                "id": ex.id,
                "claim": ex.claim,
                "evidence": list(ex.evidence),
                "stances": [s.label for s in result.evidence_stances],
                "justifications": {
                    side: {"text": j.text, "indices": list(j.evidence_indices), "generated": j.generated}
                    for side, j in (("support", just.support), ("refute", just.refute))
                }
                if just
                else {},
                "seconds": round(time.perf_counter() - start, 2),
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()


def nearest_sentence(justification: str, evidence: list[str]) -> tuple[int, float]:
    """Index of the evidence sentence with the highest TF-IDF cosine to ``justification``, and that cosine."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    matrix = TfidfVectorizer(stop_words="english").fit_transform([justification, *evidence])
    sims = cosine_similarity(matrix[0], matrix[1:])[0]
    best = int(np.argmax(sims))
    return best, float(sims[best])


def measures(rows: list[dict[str, Any]], artifact: Path) -> list[dict[str, Any]]:
    """One record per generated justification: entailment by its side and where it is grounded."""
    from claimflow.predictors.multitask import MultitaskEncoder

    items: list[dict[str, Any]] = []
    for row in rows:
        for side, just in row["justifications"].items():
            if not just["generated"]:
                continue
            own = set(just["indices"])
            other_side = "refute" if side == "support" else "support"
            other = set(row["justifications"].get(other_side, {}).get("indices", []))
            index, cosine = nearest_sentence(just["text"], row["evidence"])
            where = "own" if index in own else "other side" if index in other else "neither"
            quote = row["evidence"][just["indices"][0]] if just["indices"] else just["text"]
            items.append({"id": row["id"], "side": side, "claim": row["claim"], "text": just["text"],
                          "quote": quote, "nearest": where, "cosine": cosine})  # fmt: skip
    encoder = MultitaskEncoder(artifact)
    labels = encoder.labels["stance"]
    probs = encoder.probabilities(["stance"], [(i["claim"], i["text"]) for i in items])["stance"] if items else []
    quoted = encoder.probabilities(["stance"], [(i["claim"], i["quote"]) for i in items])["stance"] if items else []
    for item, p, q in zip(items, probs, quoted, strict=True):
        side = labels.index(SIDE_LABEL[item["side"]])
        item["p_side"], item["entailed"] = float(p[side]), int(np.argmax(p)) == side
        item["quote_p_side"], item["quote_entailed"] = float(q[side]), int(np.argmax(q)) == side
    return items


def _share(values: list[float]) -> str:
    if not values:
        return "—"
    from scipy.stats import bootstrap

    if len(set(values)) == 1:
        return f"{values[0]:.2f}"
    ci = bootstrap((np.asarray(values, dtype=float),), np.mean, n_resamples=2000, method="percentile", rng=0)
    low, high = ci.confidence_interval
    return f"{np.mean(values):.2f} [{low:.2f}, {high:.2f}]"


def report(args: argparse.Namespace) -> None:
    rows = _rows(args, args.name)
    items = measures(rows, args.multitask)
    print(f"{len(rows)} claims, {len(items)} generated justifications "
          f"(median {np.median([r['seconds'] for r in rows]):.1f} s per claim for stance + justify)\n")  # fmt: skip
    print("| side | n | entailed by its side | mean P(side) | nearest: own | other side | neither | mean cosine |")
    print("|---|---|---|---|---|---|---|---|")
    for side in ("support", "refute", "all"):
        chosen = [i for i in items if side in ("all", i["side"])]
        cells = [
            _share([float(i["entailed"]) for i in chosen]),
            _share([i["p_side"] for i in chosen]),
            *(_share([float(i["nearest"] == w) for i in chosen]) for w in ("own", "other side", "neither")),
            _share([i["cosine"] for i in chosen]),
        ]
        print(f"| {side} | {len(chosen)} | " + " | ".join(cells) + " |")
    print("\nFor reference, the first sentence each justification was given, quoted as it is (no generation):\n")
    print("| side | n | entailed by its side | mean P(side) |")
    print("|---|---|---|---|")
    for side in ("support", "refute", "all"):
        chosen = [i for i in items if side in ("all", i["side"])]
        cells = [_share([float(i["quote_entailed"]) for i in chosen]), _share([i["quote_p_side"] for i in chosen])]
        print(f"| {side} | {len(chosen)} | " + " | ".join(cells) + " |")


def _rows(args: argparse.Namespace, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (args.out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if x]


def compare(args: argparse.Namespace) -> None:
    """Paired differences (``--name`` minus ``--baseline``) over the justifications both runs wrote for
    the same claim and side, with percentile bootstrap CIs."""
    from scipy.stats import bootstrap

    ours = {(i["id"], i["side"]): i for i in measures(_rows(args, args.name), args.multitask)}
    base = {(i["id"], i["side"]): i for i in measures(_rows(args, args.baseline), args.multitask)}
    keys = sorted(set(ours) & set(base))
    print(f"| measure | {args.name} − {args.baseline} [95% CI] | n |\n|---|---|---|")
    for measure in ("entailed", "p_side", "cosine"):
        diff = np.array([float(ours[k][measure]) - float(base[k][measure]) for k in keys])
        if len(set(diff.tolist())) > 1:
            ci = bootstrap((diff,), np.mean, n_resamples=2000, method="percentile", rng=0).confidence_interval
            cell = f"{diff.mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"
        else:
            cell = f"{diff.mean():+.3f}" if keys else "—"
        print(f"| {measure} | {cell} | {len(keys)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/justifications"))
    parser.add_argument("--data-dir", type=Path, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--sample", type=int, default=40)
    r.add_argument("--dataset", default="covidfact")
    r.add_argument("--split", default="dev")
    r.add_argument("--config", type=Path, default=None, help="a pipeline YAML (e.g. another justify model)")
    rep = sub.add_parser("report")
    rep.add_argument("--name", required=True)
    rep.add_argument("--multitask", type=Path, default=Path("src/claimflow/artifacts/evidence-multitask"))
    cmp = sub.add_parser("compare")
    cmp.add_argument("--name", required=True)
    cmp.add_argument("--baseline", required=True)
    cmp.add_argument("--multitask", type=Path, default=Path("src/claimflow/artifacts/evidence-multitask"))
    args = parser.parse_args()
    {"run": run, "report": report, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()

"""Claim veracity from the evidence stances (issue #13 (b)): the aggregate rule against the default pipeline.

    B=".venv/bin/python benchmarks/veracity_stances.py"
    # the stance model's outputs for every claim of the three dev sets (cached; rerun resumes)
    $B score --name mtl --multitask src/claimflow/artifacts/evidence-multitask
    # the default verify (stance -> SmolLM2 justifications -> veracity ELM) on a seeded COVID-Fact dev sample
    $B pipeline --name default --sample 120
    # the table: every aggregate variant, CIs, paired tests against --baseline with Holm per set
    $B report --baseline mtl:max

Sets (never trained on): COVID-Fact dev (419 claims, SUPPORTED / REFUTED: scored two-way), SciFact
dev (300 claims, evidence = every sentence of the cited abstracts; SUPPORTED / REFUTED /
NOT_ENOUGH_INFO, and two-way on the claims with a rationale), the Climate-FEVER dev part the
multi-task split holds out (DISPUTED excluded; three-way). The aggregate rule has no parameter fitted
on any of them (``claimflow.predictors.stance_aggregate``); variants: ``max`` / ``noisy_or``, with
the relevance weight (``:max``) or without it (``:max-norel``); on two-way sets also read as
"supported or not" (``-nsup``: NOT_ENOUGH_INFO counts as REFUTED).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from claimflow.evals.labels import map_label
from claimflow.evals.metrics import macro_f1
from claimflow.evals.stats import bootstrap_ci, holm_correction, paired_bootstrap, permutation_test
from claimflow.predictors.stance_aggregate import scored_stances, side_strengths, verdict_distribution

THREE = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")
TWO = THREE[:2]
VARIANTS = {"max": ("max", True), "noisy_or": ("noisy_or", True), "max-norel": ("max", False)}
NOT_SUPPORTED = "-nsup"


def claim_sets(data_dir: Path | None, split: str = "dev", artifact: Path | None = None) -> dict[str, list[Any]]:
    """The dev sets, or (``split="train"``) the train sets the stance-features classifier is fitted on.

    For ``train``, a stance model that trained on COVID-Fact (its provenance lists the source) is scored
    only on the COVID-Fact train articles it left out: on the ones it trained on, its stances replay
    their gold labels and the classifier fitted on them would trust the stances far too much."""
    from claimflow.evals.datasets import load_dataset
    from claimflow.finetune.multitask_data import MultitaskData, climate_fever_parts, covidfact_parts

    data = MultitaskData()
    cf_train, cf_dev = climate_fever_parts(data_dir, data.dev_fraction, data.split_seed)
    provenance = _load(artifact / "provenance.json") if artifact is not None else {}
    trained = provenance.get("config", {}).get("data", {})
    if split == "train" and "covidfact" in trained.get("stance_sources", ()):
        fraction = float(trained.get("covidfact_stance_fraction", 1.0))
        if fraction >= 1:
            raise SystemExit(f"{artifact} trained on all of COVID-Fact train: no part is left to fit on")
        covidfact = covidfact_parts(data_dir, fraction, int(trained.get("split_seed", data.split_seed)))[1]
    else:
        covidfact = load_dataset("covidfact", split, data_dir)
    return {
        "covidfact": covidfact,
        "scifact": load_dataset("scifact", split, data_dir),
        "climate_fever": cf_dev if split == "dev" else cf_train,
    }


def gold_label(set_name: str, label: str) -> str | None:
    return map_label(set_name, "veracity", label)


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}


def score(args: argparse.Namespace) -> None:
    """Stance + relevance of every evidence sentence of every claim, one record per set."""
    from claimflow.predictors.multitask import MultitaskEncoder

    out = args.out / f"{args.name}.json"
    done = _load(out)
    model = MultitaskEncoder(args.multitask, batch_size=32, threads=args.threads)
    for set_name, examples in claim_sets(args.data_dir, args.split, args.multitask).items():
        if set_name in done or (args.only and set_name not in args.only):
            continue
        start = time.perf_counter()
        claims = []
        for ex in examples[: args.limit or None]:
            gold = gold_label(set_name, ex.label or "")
            if gold is None or not ex.evidence:
                continue
            stances, relevance = model.stance_and_relevance(ex.claim, ex.evidence)
            claims.append(
                {
                    "id": ex.id,
                    "gold": gold,
                    "stance": [s.probabilities for s in stances],
                    "relevance": relevance,
                }
            )
        seconds = time.perf_counter() - start
        done[set_name] = {"claims": claims, "seconds": round(seconds, 1), "ms_per_claim": 1000 * seconds / len(claims)}
        args.out.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**done, "meta": {"artifact": str(args.multitask)}}), encoding="utf-8")
        print(f"{args.name} {set_name}: {len(claims)} claims, {seconds:.0f} s")


def pipeline(args: argparse.Namespace) -> None:
    """The default ``verify`` (all four stages, forced past the gate) on a seeded sample of COVID-Fact dev;
    one JSON line per claim, appended, so a killed run resumes."""
    from claimflow import PipelineConfig, Verifier

    out = args.out / f"{args.name}.pipeline.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    seen = {json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()} if out.exists() else set()
    examples = claim_sets(args.data_dir)["covidfact"]
    chosen = sorted(random.Random(0).sample(range(len(examples)), min(args.sample, len(examples))))
    with Verifier(PipelineConfig()) as verifier, out.open("a", encoding="utf-8") as sink:
        for i in chosen:
            ex = examples[i]
            if ex.id in seen:
                continue
            start = time.perf_counter()
            result = verifier.verify(ex.claim, ex.evidence, force=True)
            row = {
                "id": ex.id,
                "gold": gold_label("covidfact", ex.label or ""),
                "pred": result.veracity.label if result.veracity else None,
                "probabilities": result.veracity.probabilities if result.veracity else {},
                "seconds": round(time.perf_counter() - start, 2),
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()


def fast_macro_f1(labels: tuple[str, ...]) -> Any:
    """Macro-F1 over ``labels`` from counts (the thousands of bootstrap resamples make sklearn's
    per-call validation the cost); checked against :func:`claimflow.evals.metrics.macro_f1` in the report."""

    def metric(gold: list[str], pred: list[str | None]) -> float:
        scores = []
        for label in labels:
            tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
            fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
            fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
            scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        return sum(scores) / len(scores)

    return metric


def predictions(record: dict[str, Any], variant: str, two_way: bool) -> dict[str, str]:
    """Each claim's verdict; two-way: the larger of SUPPORTED / REFUTED, or (``...-nsup``) "supported
    or not": NOT_ENOUGH_INFO read as REFUTED."""
    not_supported = variant.endswith(NOT_SUPPORTED)
    combine, use_relevance = VARIANTS[variant.removesuffix(NOT_SUPPORTED)]
    out = {}
    for claim in record["claims"]:
        stances = scored_stances(claim["stance"], claim["relevance"] if use_relevance else None)
        s, f = side_strengths(stances, "SUPPORT", "REFUTE", combine)  # type: ignore[arg-type]
        dist = verdict_distribution(s, f, two_way=two_way and not not_supported)
        label = max(dist, key=dist.__getitem__)
        out[claim["id"]] = "REFUTED" if label == "NOT_ENOUGH_INFO" else label
    return out


def classified(record: dict[str, Any], artifact: Path, two_way: bool) -> dict[str, str]:
    """The stance-features classifier's verdicts (two-way: the larger of SUPPORTED / REFUTED)."""
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    classifier = StanceFeatureClassifier(artifact)
    out = {}
    for claim in record["claims"]:
        if two_way and claim["gold"] == "NOT_ENOUGH_INFO":
            continue
        stances = scored_stances(claim["stance"], claim["relevance"])
        dist = classifier.score(stances).probabilities
        labels = TWO if two_way else tuple(dist)
        out[claim["id"]] = max(labels, key=lambda label: dist.get(label, 0.0))
    return out


def comparison_table(
    title: str, systems: dict[str, dict[str, str]], gold: dict[str, str], labels: tuple[str, ...], baseline: str
) -> list[str]:
    """Markdown rows: each system's macro-F1 with a bootstrap CI, and its paired difference from
    ``baseline`` on the claims both predicted (paired bootstrap CI, permutation p, Holm over the table)."""
    metric = fast_macro_f1(labels)
    base = systems.get(baseline, {})
    rows, pvalues = [], {}
    for name, preds in systems.items():
        ids = sorted(preds)
        g, p = [gold[i] for i in ids], [preds[i] for i in ids]
        value = metric(g, p)
        assert abs(value - macro_f1(labels)(g, p)) < 1e-9, (name, value)
        low, high = bootstrap_ci(g, p, metric, n_resamples=1000)
        diff = ""
        shared = [i for i in ids if i in base]
        if name != baseline and len(shared) >= 2:
            gs, mine, theirs = [gold[i] for i in shared], [preds[i] for i in shared], [base[i] for i in shared]
            boot = paired_bootstrap(gs, mine, theirs, metric)
            pvalues[name] = permutation_test(gs, mine, theirs, metric, n_resamples=999).p_value
            diff = f"{boot.difference:+.3f} [{boot.ci_low:+.3f}, {boot.ci_high:+.3f}] (n={len(shared)})"
        rows.append([name, f"{value:.3f}", f"[{low:.3f}, {high:.3f}]", str(len(ids)), diff])
    adjusted = dict(zip(pvalues, holm_correction(list(pvalues.values())).adjusted, strict=True)) if pvalues else {}
    header = f"| predictor | macro-F1 | 95% CI | n | Δ vs {baseline} [95% CI] | p (Holm) |"
    lines = [f"\n### {title}\n", header, "|---|---|---|---|---|---|"]
    for row in rows:
        p_text = f"{adjusted[row[0]]:.4f}" if row[0] in adjusted else ""
        lines.append("| " + " | ".join([*row, p_text]) + " |")
    return lines


def report(args: argparse.Namespace) -> None:
    runs = {p.stem: _load(p) for p in sorted(args.out.glob("*.json")) if not args.runs or p.stem in args.runs}
    pipelines = {
        p.name.removesuffix(".pipeline.jsonl"): [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]
        for p in sorted(args.out.glob("*.pipeline.jsonl"))
    }
    evaluations = [("covidfact", True, "COVID-Fact dev, two-way"), ("scifact", False, "SciFact dev, three-way"),
                   ("scifact", True, "SciFact dev, claims with a rationale, two-way"),
                   ("climate_fever", False, "Climate-FEVER dev part, three-way (DISPUTED excluded)")]  # fmt: skip
    lines = []
    for set_name, two_way, title in evaluations:
        labels = TWO if two_way else THREE
        systems: dict[str, dict[str, str]] = {}
        gold: dict[str, str] = {}
        for run, data in runs.items():
            if set_name not in data:
                continue
            claims = [c for c in data[set_name]["claims"] if not two_way or c["gold"] != "NOT_ENOUGH_INFO"]
            gold.update({c["id"]: c["gold"] for c in claims})
            for variant in [*VARIANTS, *(f"{v}{NOT_SUPPORTED}" for v in VARIANTS if two_way)]:
                preds = predictions({"claims": claims}, variant, two_way)
                systems[f"{run}:{variant}"] = preds
        for run, data in runs.items():
            for artifact in args.stance_features or []:
                if set_name in data:
                    systems[f"{run}+{artifact.name}"] = classified(data[set_name], artifact, two_way)
        if set_name == "covidfact":
            for name, rows in pipelines.items():
                systems[f"{name} (pipeline)"] = {r["id"]: r["pred"] for r in rows}
                gold.update({r["id"]: r["gold"] for r in rows})
        if not systems:
            continue
        majority = max(labels, key=lambda label: sum(g == label for g in gold.values()))
        systems["majority class"] = {i: majority for i in gold}
        lines += comparison_table(title, systems, gold, labels, args.baseline)
    for run, data in runs.items():
        times = ", ".join(
            f"{s} {data[s]['ms_per_claim']:.0f} ms/claim"
            for s in ("covidfact", "scifact", "climate_fever")
            if s in data
        )
        lines.append(f"\n{run} stance + relevance time: {times}")
    for name, rows in pipelines.items():
        seconds = sorted(r["seconds"] for r in rows)
        lines.append(f"\n{name} (pipeline): median {seconds[len(seconds) // 2]:.2f} s/claim over {len(rows)} claims")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/veracity"))
    parser.add_argument("--data-dir", type=Path, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--name", required=True)
    s.add_argument("--multitask", type=Path, required=True)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--limit", type=int, default=0, help="first N claims per set (a smoke test); 0: all")
    s.add_argument("--split", choices=("dev", "train"), default="dev")
    s.add_argument("--only", nargs="*", default=None, help="these sets only")
    p = sub.add_parser("pipeline")
    p.add_argument("--name", required=True)
    p.add_argument("--sample", type=int, default=120)
    r = sub.add_parser("report")
    r.add_argument("--baseline", default="mtl:max")
    r.add_argument("--stance-features", type=Path, nargs="*", help="stance-features artifacts to score too")
    r.add_argument("--runs", nargs="*", help="only these scored runs")
    args = parser.parse_args()
    {"score": score, "pipeline": pipeline, "report": report}[args.command](args)


if __name__ == "__main__":
    main()

"""Veracity predictors side by side on the three dev sets, from evidence ranked as ``verify`` ranks it.

    # once per set (resumable; no gold label in the files): stance, relevance, most relevant first
    for s in "covidfact dev" "scifact dev" "climate_fever dev_part"; do set -- $s
      .venv/bin/python -m claimflow.finetune.ranked_evidence --dataset $1 --split $2 -o runs/ranked/$1-$2.jsonl; done
    .venv/bin/python benchmarks/veracity_predictors.py \
        --encoder runs/veracity/raw-evidence-from-evidence-model/best [--encoder OTHER ...] \
        [--stance-features src/claimflow/artifacts/veracity-stance-features] [--json runs/bench/predictors.json] \
        [--prompt veracity_evidence_3way@1 --model qwen2.5-coder-1.5b-instruct [--max-evidence 5]]

``--prompt`` adds a zero-shot GLM verdict (issue #13 (a)): the template over the claim and its ranked
evidence, label words scored by llama.cpp; its distributions are kept per claim in
``runs/bench/prompt-cache/`` and a rerun scores only the claims it lacks (a stopped run loses nothing);
``--prompt-sample N`` scores a seeded sample of N claims per set (the paired tests use the claims both scored).

``mean(A, B)`` rows average two predictors' distributions (an untuned ensemble, weights fixed at 1/2).
Every predictor sees what the pipeline's veracity stage sees: the claim, its evidence sentences most
relevant first (``encoder``), or their stances and relevance (``stance_features``, ``aggregate``).
Two-way sets (COVID-Fact; SciFact claims with a rationale) take the larger of SUPPORTED / REFUTED.
CIs: percentile bootstrap (1,000 resamples); Δ: paired bootstrap against ``--baseline``; p: paired
permutation test, Holm-corrected per set.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from veracity_stances import THREE, TWO, comparison_table

from claimflow.evals.labels import map_label
from claimflow.finetune.ranked_evidence import claims_of
from claimflow.graphs.components import shipped_artifact
from claimflow.io import iter_jsonl
from claimflow.predictors.stance_aggregate import scored_stances, side_strengths, verdict_distribution

SETS = (
    ("covidfact", "dev", True, "COVID-Fact dev, two-way"),
    ("scifact", "dev", False, "SciFact dev, three-way"),
    ("scifact", "dev", True, "SciFact dev, claims with a rationale, two-way"),
    ("climate_fever", "dev_part", False, "Climate-FEVER dev part, three-way (DISPUTED excluded)"),
)
RAW_SETS = (("covidfact", "dev", "COVID-Fact dev, the verdict as `verify` gives it (NOT_ENOUGH_INFO counted wrong)"),)
"""Two-way sets read without the two-way reading: a NOT_ENOUGH_INFO verdict is a miss, as for a user."""


def ranked_claims(ranked_dir: Path, dataset: str, split: str, data_dir: Path | None) -> list[dict[str, Any]]:
    """The ranked lines of a set joined with the claim text and (for scoring only) the gold label."""
    examples = {ex.id: ex for ex in claims_of(dataset, split, data_dir)}
    out = []
    for _, line in iter_jsonl(str(ranked_dir / f"{dataset}-{split}.jsonl")):
        ex = examples[str(line["id"])]
        gold = map_label(dataset, "veracity", ex.label)
        if gold is not None:
            out.append({**line, "claim": ex.claim, "gold": gold})
    return out


def _name(artifact: Path) -> str:
    """A run's folder name (``.../NAME/best`` -> ``NAME``)."""
    return artifact.parent.name if artifact.name == "best" else artifact.name


def pick(dist: dict[str, float], two_way: bool) -> str:
    labels = TWO if two_way else tuple(dist)
    return max(labels, key=lambda label: dist.get(label, 0.0))


def distributions(claims: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    """Each predictor's verdict distribution for each claim (by id)."""
    from claimflow.predictors.encoder import EncoderClassifier
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    out: dict[str, dict[str, dict[str, float]]] = {}
    stances = {c["id"]: scored_stances(c["stance"], c["relevance"]) for c in claims}
    out["aggregate:max"] = {
        i: verdict_distribution(*side_strengths(s, "SUPPORT", "REFUTE", "max"), two_way=False)
        for i, s in stances.items()
    }
    for artifact in args.stance_features:
        classifier = StanceFeatureClassifier(artifact)
        out[f"stance_features:{artifact.name}"] = {i: classifier.score(s).probabilities for i, s in stances.items()}
        for t in args.min_relevance:
            guarded = StanceFeatureClassifier(artifact, min_relevance=t)
            out[f"stance_features:{artifact.name}@min_relevance={t}"] = {
                i: guarded.score(s).probabilities for i, s in stances.items()
            }
    for artifact in args.encoder:
        model = EncoderClassifier(artifact, threads=args.threads, batch_size=32)
        start = time.perf_counter()
        probs = model.probabilities([{"claim": c["claim"], "evidence": c["evidence"]} for c in claims])
        args.timing[f"encoder:{_name(artifact)}"] = (time.perf_counter() - start) / max(len(claims), 1)
        out[f"encoder:{_name(artifact)}"] = {
            c["id"]: dict(zip(model.labels, p, strict=True)) for c, p in zip(claims, probs, strict=True)
        }
    for ref, model in args.prompt_variants:
        name = f"prompt:{ref}@{model}"
        out[name] = _prompt_distributions(claims, ref, model, args)
    for a in [name for name in out if name.startswith(("encoder:", "prompt:"))]:
        for b in [name for name in out if name.startswith("stance_features:") and "@" not in name]:
            out[f"mean({a}, {b})"] = {i: _mean(out[a][i], out[b][i]) for i in out[a]}
    return out


def _prompt_distributions(
    claims: list[dict[str, Any]], ref: str, model: str, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """A prompted verdict per claim, cached on disk by (template, model, evidence cap, claim id)."""
    from claimflow.config import BackendConfig
    from claimflow.io import iter_jsonl
    from claimflow.llm.factory import make_backend
    from claimflow.models.store import ModelStore
    from claimflow.predictors.prompt import PromptClassifier
    from claimflow.prompts.registry import TemplateRegistry

    if args.prompt_sample and len(claims) > args.prompt_sample:
        claims = random.Random(13).sample(sorted(claims, key=lambda c: str(c["id"])), args.prompt_sample)
    cache = args.prompt_cache / f"{ref}@{model}@k{args.max_evidence}.jsonl".replace("/", "_")
    done = {str(line["id"]): line["p"] for _, line in iter_jsonl(str(cache))} if cache.exists() else {}
    todo = [c for c in claims if str(c["id"]) not in done]
    if todo:
        template = TemplateRegistry().get(ref)
        backend = make_backend(BackendConfig(model=model, threads=args.threads, context_length=4096), ModelStore())
        classifier = PromptClassifier(template, backend, batch_size=8)
        cache.parent.mkdir(parents=True, exist_ok=True)
        start, n = time.perf_counter(), 0
        with cache.open("a", encoding="utf-8") as sink:
            for chunk in range(0, len(todo), 8):
                part = todo[chunk : chunk + 8]
                scores = classifier.predict(
                    [{"claim": c["claim"], "evidence": c["evidence"][: args.max_evidence]} for c in part]
                )
                for c, s in zip(part, scores, strict=True):
                    done[str(c["id"])] = s.probabilities
                    sink.write(json.dumps({"id": str(c["id"]), "p": s.probabilities}) + "\n")
                sink.flush()
                n += len(part)
        args.timing[f"prompt:{ref}@{model}"] = (time.perf_counter() - start) / max(n, 1)
        backend.close()
    return {c["id"]: done[str(c["id"])] for c in claims}


def _mean(p: dict[str, float], q: dict[str, float]) -> dict[str, float]:
    """The average of two verdict distributions (a label one side lacks counts 0 there)."""
    return {label: (p.get(label, 0.0) + q.get(label, 0.0)) / 2 for label in dict.fromkeys([*p, *q])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranked", type=Path, default=Path("runs/ranked"))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--encoder", type=Path, nargs="*", default=[])
    parser.add_argument(
        "--stance-features", type=Path, nargs="*", default=[shipped_artifact("veracity-stance-features")]
    )
    parser.add_argument("--baseline", default="stance_features:veracity-stance-features")
    parser.add_argument(
        "--min-relevance", type=float, nargs="*", default=[], help="also each stance_features with this guard"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every prediction here")
    parser.add_argument("--prompt", nargs="*", default=[], help="template refs for a zero-shot GLM verdict")
    parser.add_argument("--model", nargs="*", default=[], help="store models for --prompt (one per --prompt)")
    parser.add_argument("--max-evidence", type=int, default=5, help="--prompt: the K most relevant sentences")
    parser.add_argument("--prompt-sample", type=int, default=None, help="--prompt: a seeded sample of N claims a set")
    parser.add_argument("--prompt-cache", type=Path, default=Path("runs/bench/prompt-cache"))
    parser.add_argument("--only", nargs="*", default=None, help="datasets to score (default: all)")
    args = parser.parse_args()
    args.timing = {}
    if len(args.prompt) != len(args.model):
        parser.error("give one --model per --prompt")
    args.prompt_variants = list(zip(args.prompt, args.model, strict=True))
    lines, dump = [], {}
    cache: dict[tuple[str, str], tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for dataset, split, two_way, title in SETS:
        if args.only and dataset not in args.only:
            continue
        if (dataset, split) not in cache:
            claims = ranked_claims(args.ranked, dataset, split, args.data_dir)
            cache[dataset, split] = (claims, distributions(claims, args))
        claims, dists = cache[dataset, split]
        claims = [c for c in claims if not two_way or c["gold"] != "NOT_ENOUGH_INFO"]
        gold = {c["id"]: c["gold"] for c in claims}
        labels = TWO if two_way else THREE
        systems = {name: {i: pick(d[i], two_way) for i in gold if i in d} for name, d in dists.items()}
        majority = max(labels, key=lambda label: sum(g == label for g in gold.values()))
        systems["majority class"] = {i: majority for i in gold}
        dump[title] = {"gold": gold, "systems": systems}
        lines += comparison_table(title, systems, gold, labels, args.baseline)
    for dataset, split, title in RAW_SETS:
        if (dataset, split) not in cache:
            continue
        claims, dists = cache[dataset, split]
        gold = {c["id"]: c["gold"] for c in claims}
        systems = {name: {i: pick(d[i], False) for i in gold if i in d} for name, d in dists.items()}
        dump[title] = {"gold": gold, "systems": systems}
        lines += comparison_table(title, systems, gold, TWO, args.baseline)
    for name, seconds in args.timing.items():
        lines.append(f"\n{name}: {1000 * seconds:.1f} ms per claim (the last set scored, batch 32)")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dump), encoding="utf-8")


if __name__ == "__main__":
    main()

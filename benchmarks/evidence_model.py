"""The evidence model's tasks on dev data, every predictor on the same items, with paired tests.

    # score one predictor (predictions cached under --out/<name>.json; rerun = cache read)
    B=".venv/bin/python benchmarks/evidence_model.py"
    $B score --name mtl-minilm-lora --multitask runs/evidence/multitask-minilm-lora/best
    $B score --name st-stance-minilm-lora --multitask runs/evidence/stance-minilm-lora/best
    $B score --name st-claim-minilm-lora --encoder src/claimflow/artifacts/checkworthiness-encoder
    $B score --name zeroshot-smollm2 --prompt evidence_stance_3way@1 --sample 300
    $B score --name zeroshot-qwen15 --prompt evidence_stance_3way@1 --model qwen2.5-coder-1.5b-instruct --sample 150
    $B score --name st-stance-smollm2-lora-cls --causal-lora configs/evidence/stance-smollm2-lora-cls.yaml
    $B score --name st-stance-smollm2-lora-clm --causal-lora configs/evidence/stance-smollm2-lora-clm.yaml
    # the table: bootstrap CIs, paired bootstrap / randomization tests against --baseline, Holm per task
    $B report --baseline mtl-minilm-lora

Evaluation sets (never trained on; the HealthVer and Climate-FEVER dev parts are the claims the
multi-task split holds out, seed and fraction from ``MultitaskData``):

- stance macro-F1: HealthVer dev part, Climate-FEVER dev part, SciFact dev (every sentence of the
  cited abstracts: rationales SUPPORT / REFUTE, the rest NEUTRAL);
- relevance: nDCG@5 and MRR (scikit-learn's ``ndcg_score``; MRR of the first rationale sentence) on
  SciFact dev claims with at least one rationale, ranking all sentences of their cited abstracts;
- claim detection: F1(Yes) on CheckThat! 2024 dev and dev-test, and the gap between the two.

``--sample N`` draws N items per set (seeded, the same items for every predictor that uses it);
paired tests use the items both predictors scored.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claimflow.evals.metrics import macro_f1, positive_f1
from claimflow.evals.stats import bootstrap_ci, holm_correction, paired_bootstrap, permutation_test
from claimflow.finetune.multitask_data import (
    MultitaskData,
    TaskExample,
    claim_sentences,
    climate_fever_parts,
    evidence_pairs,
    healthver_parts,
)

STANCE = ("SUPPORT", "REFUTE", "NEUTRAL")
SETS = ("healthver", "climate_fever", "scifact", "ct24-dev", "ct24-dev-test")


def eval_sets(data_dir: Path | None) -> dict[str, list[TaskExample]]:
    from claimflow.evals.datasets import load_dataset

    data = MultitaskData()
    _, hv_dev = healthver_parts(data_dir, data.dev_fraction, data.split_seed)
    _, cf_dev = climate_fever_parts(data_dir, data.dev_fraction, data.split_seed)
    sf_dev = load_dataset("scifact", "dev", data_dir)
    return {
        "healthver": evidence_pairs(hv_dev, "healthver", "stance"),
        "climate_fever": evidence_pairs(cf_dev, "climate_fever", "stance"),
        "scifact": evidence_pairs(sf_dev, "scifact", "stance"),
        "ct24-dev": claim_sentences(load_dataset("checkthat2024_en", "dev", data_dir), "checkthat2024_en"),
        "ct24-dev-test": claim_sentences(load_dataset("checkthat2024_en", "dev-test", data_dir), "checkthat2024_en"),
    }


def item_id(set_name: str, index: int) -> str:
    return f"{set_name}#{index}"


def score(args: argparse.Namespace) -> None:
    out = args.out / f"{args.name}.json"
    done: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    sets = eval_sets(args.data_dir)
    stance_fn, relevance_fn, claim_fn, meta = _predictors(args)
    for set_name, items in sets.items():
        is_claim = set_name.startswith("ct24")
        if set_name in done or (is_claim and claim_fn is None) or (not is_claim and stance_fn is None):
            continue
        indices = list(range(len(items)))
        if args.sample and args.sample < len(items):
            indices = sorted(random.Random(0).sample(indices, args.sample))
        chosen = [items[i] for i in indices]
        start = time.perf_counter()
        record: dict[str, Any] = {"ids": [item_id(set_name, i) for i in indices], "gold": [x.label for x in chosen]}
        if is_claim:
            assert claim_fn is not None
            record["pred"] = claim_fn(chosen)
        else:
            assert stance_fn is not None
            record["pred"] = stance_fn(chosen)
            if set_name == "scifact" and relevance_fn is not None:
                record["relevance"] = relevance_fn(chosen)
                record["groups"] = [x.group for x in chosen]
        record["seconds"] = round(time.perf_counter() - start, 2)
        record["per_item_ms"] = round(1000 * record["seconds"] / max(len(chosen), 1), 2)
        done[set_name] = record
        args.out.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**done, "meta": meta}), encoding="utf-8")
        print(f"{args.name} {set_name}: {len(chosen)} items, {record['seconds']} s")


def _predictors(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    if args.multitask:
        from claimflow.predictors.multitask import MultitaskEncoder

        model = MultitaskEncoder(args.multitask, batch_size=32, threads=args.threads)
        _same_held_out(model.provenance_data, args.data_dir)
        heads = set(model.tasks)

        def stance(items: Sequence[TaskExample]) -> list[str]:
            probs = model.probabilities(["stance"], [(x.text_a, x.text_b) for x in items])["stance"]
            return [s.label or "" for s in model.scores("stance", probs)]

        def relevance(items: Sequence[TaskExample]) -> list[float]:
            column = model.labels["relevance"].index("relevant")
            probs = model.probabilities(["relevance"], [(x.text_a, x.text_b) for x in items])["relevance"]
            return [row[column] for row in probs]

        def claim(items: Sequence[TaskExample]) -> list[str]:
            probs = model.probabilities(["claim"], [(x.text_a, None) for x in items])["claim"]
            return [s.label or "" for s in model.scores("claim", probs)]

        return (
            stance if "stance" in heads else None,
            relevance if "relevance" in heads else None,
            claim if "claim" in heads else None,
            {"kind": "multitask", "artifact": str(args.multitask)},
        )
    if args.causal_lora:
        return _causal_lora(args)
    if args.encoder:
        from claimflow.predictors.encoder import EncoderClassifier

        encoder = EncoderClassifier(args.encoder, threads=args.threads)

        def encoder_claim(items: Sequence[TaskExample]) -> list[str]:
            return [s.label or "" for s in encoder.predict([{"claim": x.text_a} for x in items])]

        return None, None, encoder_claim, {"kind": "encoder", "artifact": str(args.encoder)}
    from claimflow.config import BackendConfig
    from claimflow.llm.factory import make_backend
    from claimflow.models.store import ModelStore
    from claimflow.predictors import PromptClassifier
    from claimflow.prompts.registry import TemplateRegistry

    template = TemplateRegistry().get(args.prompt)
    backend = make_backend(BackendConfig(model=args.model, threads=args.threads), ModelStore())
    classifier = PromptClassifier(template, backend)

    def prompt_stance(items: Sequence[TaskExample]) -> list[str]:
        scores = classifier.predict([{"claim": x.text_a, "sentence": x.text_b} for x in items])
        return [max(STANCE, key=lambda label: s.probabilities.get(label, 0.0)) for s in scores]

    return prompt_stance, None, None, {"kind": "prompt", "template": template.ref, "model": args.model}


def _causal_lora(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The best adapter of a ``claimflow finetune lora`` stance-pairs run (stance only)."""
    from claimflow.finetune.lora import CausalLoraConfig, CausalLoraModel, pair_rows

    config = CausalLoraConfig.from_yaml(args.causal_lora)
    if config.stance_pairs is None:
        raise SystemExit(f"{args.causal_lora}: not a stance-pairs run (no stance_pairs section)")
    if args.threads:
        config = config.model_copy(update={"threads": args.threads})
    best = config.output_dir / "best"
    provenance = json.loads((best / "provenance.json").read_text(encoding="utf-8"))
    _same_held_out(provenance, args.data_dir)
    net = CausalLoraModel(config, provenance["labels"])
    net.load_adapter(best)

    def stance(items: Sequence[TaskExample]) -> list[str]:
        probs = net.predict(net.encode(pair_rows(items)), config.training.eval_batch_size)
        return [net.labels[max(range(len(p)), key=p.__getitem__)] for p in probs]

    return stance, None, None, {"kind": "causal_lora", "config": str(args.causal_lora), "head": config.head}


def _same_held_out(provenance: dict[str, Any], data_dir: Path | None) -> None:
    """The artifact must have held out exactly the claims this script scores (its split = the default)."""
    data = MultitaskData()
    held = provenance.get("data", {}).get("held_out_claims", {})
    parts = {
        "healthver": healthver_parts(data_dir, data.dev_fraction, data.split_seed)[1],
        "climate_fever": climate_fever_parts(data_dir, data.dev_fraction, data.split_seed)[1],
    }
    for name, examples in parts.items():
        if name in held and sorted({e.id for e in examples}) != sorted(held[name]):
            raise SystemExit(f"{name}: the artifact held out other claims than this benchmark scores; not comparable")


def ranking(record: dict[str, Any]) -> dict[str, float]:
    """nDCG@5 and MRR over the claims with at least one relevant (rationale) sentence."""
    from sklearn.metrics import ndcg_score

    by_claim: dict[str, list[tuple[float, int]]] = {}
    for group, gold, rel in zip(record["groups"], record["gold"], record["relevance"], strict=True):
        by_claim.setdefault(group, []).append((rel, int(gold != "NEUTRAL")))
    ndcgs, rrs = [], []
    for rows in by_claim.values():
        truth = [t for _, t in rows]
        if sum(truth) == 0 or len(rows) < 2:
            continue
        ndcgs.append(ndcg_score([truth], [[s for s, _ in rows]], k=5))
        ranked = sorted(rows, key=lambda r: -r[0])
        rrs.append(1.0 / (1 + next(i for i, (_, t) in enumerate(ranked) if t)))
    return {"ndcg@5": float(np.mean(ndcgs)), "mrr": float(np.mean(rrs)), "claims": len(ndcgs)}


def report(args: argparse.Namespace) -> None:
    runs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.out.glob("*.json"))}
    base = runs.get(args.baseline)
    lines = []
    for set_name in SETS:
        metric = positive_f1("Yes") if set_name.startswith("ct24") else macro_f1(STANCE)
        name = "F1(Yes)" if set_name.startswith("ct24") else "macro-F1"
        rows, pvalues = [], {}
        for run, data in runs.items():
            rec = data.get(set_name)
            if rec is None:
                continue
            value = metric(rec["gold"], rec["pred"])
            low, high = bootstrap_ci(rec["gold"], rec["pred"], metric)
            diff = ""
            if base is not None and run != args.baseline and set_name in base:
                ref = dict(zip(base[set_name]["ids"], base[set_name]["pred"], strict=True))
                shared = [i for i, item in enumerate(rec["ids"]) if item in ref]
                gold = [rec["gold"][i] for i in shared]
                mine = [rec["pred"][i] for i in shared]
                theirs = [ref[rec["ids"][i]] for i in shared]
                if len(shared) >= 2:
                    boot = paired_bootstrap(gold, mine, theirs, metric)
                    pvalues[run] = permutation_test(gold, mine, theirs, metric, n_resamples=1999).p_value
                    diff = f"{boot.difference:+.3f} [{boot.ci_low:+.3f}, {boot.ci_high:+.3f}] (n={len(shared)})"
            rows.append([run, f"{value:.3f}", f"[{low:.3f}, {high:.3f}]", str(len(rec["gold"])), diff,
                         f"{rec['per_item_ms']:.1f}"])  # fmt: skip
        if not rows:
            continue
        adjusted = dict(zip(pvalues, holm_correction(list(pvalues.values())).adjusted, strict=True)) if pvalues else {}
        lines += [f"\n### {set_name} ({name})\n", f"| predictor | {name} | 95% CI | n | Δ vs {args.baseline} [95% CI] "
                  "| p (Holm) | ms/item |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in rows:
            p = f"{adjusted[row[0]]:.4f}" if row[0] in adjusted else ""
            lines.append("| " + " | ".join([*row[:5], p, row[5]]) + " |")
    rank_rows = [(run, ranking(d["scifact"])) for run, d in runs.items() if "relevance" in d.get("scifact", {})]
    if rank_rows:
        lines += ["\n### SciFact dev relevance ranking\n", "| predictor | nDCG@5 | MRR | claims |", "|---|---|---|---|"]
        lines += [f"| {run} | {r['ndcg@5']:.3f} | {r['mrr']:.3f} | {r['claims']} |" for run, r in rank_rows]
    gap = []
    for run, data in runs.items():
        if "ct24-dev" in data and "ct24-dev-test" in data:
            f = positive_f1("Yes")
            dev = f(data["ct24-dev"]["gold"], data["ct24-dev"]["pred"])
            test = f(data["ct24-dev-test"]["gold"], data["ct24-dev-test"]["pred"])
            gap.append(f"| {run} | {dev:.3f} | {test:.3f} | {dev - test:+.3f} |")
    if gap:
        lines += ["\n### Check-worthiness dev / dev-test gap\n", "| predictor | dev F1(Yes) | dev-test F1(Yes) | gap |",
                  "|---|---|---|---|", *gap]  # fmt: skip
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--name", required=True)
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--multitask", type=Path)
    group.add_argument("--encoder", type=Path)
    group.add_argument("--prompt")
    group.add_argument("--causal-lora", type=Path, help="the YAML of a `claimflow finetune lora` stance-pairs run")
    s.add_argument("--sample", type=int)
    s.add_argument("--model", default="smollm2-135m-instruct", help="--prompt: the store model (llama.cpp)")
    s.add_argument("--threads", type=int)
    r = sub.add_parser("report")
    r.add_argument("--baseline", required=True)
    for p in (s, r):
        p.add_argument("--out", type=Path, default=Path("runs/bench/evidence"))
        p.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    score(args) if args.command == "score" else report(args)


if __name__ == "__main__":
    main()

"""Reasoning-LoRA compositions as COVID-Fact veracity predictors, side by side (issue #14).

    B=".venv/bin/python benchmarks/lora_composition.py"
    $B fresh runs/reasoning-lora-cpu/fresh/best   # an untrained LoRA (r 8, q/v): the plain veracity LoRA's source
    # the reasoning LoRAs and compositions: configs/compose/cpu/*.yaml (see docs/lora-composition.md), then
    $B score --name zero-shot                      # the base model, same template and label words
    $B score --name lorahub --artifact runs/compose-cpu/lorahub/best      # ... one per composed artifact
    $B report [--also "stance features (default)=runs/bench/predictors.json"]

``score`` predicts COVID-Fact dev (all of it, or ``--sample N`` seeded claims) with a composed artifact
(``ComposedLoraClassifier``: the claim and its first evidence sentences in ``factcheck_true_false@1``,
TRUE / FALSE label words) and appends each chunk of predictions to ``runs/bench/lora-composition/NAME.jsonl``:
a rerun scores only the claims that file lacks. ``zero-shot`` is the base model itself (a composition
of one untrained LoRA, whose ΔW is 0). Only claim and evidence reach the model; gold labels are read
for scoring only. ``report`` prints macro-F1 with bootstrap CIs, paired differences from ``--baseline``
(paired bootstrap, permutation p Holm-corrected), trainable parameters, training time and inference
time per claim (from each artifact's provenance and the score files). ``--also NAME=FILE`` adds the
COVID-Fact two-way predictions of ``benchmarks/veracity_predictors.py --json FILE``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from veracity_stances import TWO, comparison_table

from claimflow.finetune.classifier import ClassifierData, load_rows
from claimflow.io import iter_jsonl

OUT = Path("runs/bench/lora-composition")
CHUNK = 16
PREDICTORS_TITLE = "COVID-Fact dev, two-way"


def fresh(folder: Path, base_model: str, seed: int) -> None:
    """Save an untrained PEFT LoRA (r 8, alpha 16, q_proj / v_proj; B = 0) on ``base_model``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from claimflow.models.convert import hf_checkpoint
    from claimflow.models.store import ModelStore

    torch.manual_seed(seed)
    store = ModelStore()
    model = AutoModelForCausalLM.from_pretrained(hf_checkpoint(store.resolve(base_model), store))
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    get_peft_model(model, config).save_pretrained(str(folder))
    print(f"untrained LoRA -> {folder}")


def _classifier(args: argparse.Namespace) -> Any:
    from claimflow.predictors.composed_lora import ComposedLoraClassifier

    if args.artifact is not None:
        return ComposedLoraClassifier(args.artifact, batch_size=CHUNK, threads=args.threads)
    return ComposedLoraClassifier.from_sources(
        [args.fresh],
        method="loraconcat",
        base_model=args.base_model,
        template="factcheck_true_false@1",
        label_map={"SUPPORTED": "TRUE", "REFUTED": "FALSE"},
        max_input_tokens=args.max_input_tokens,
        max_evidence_sentences=args.max_evidence_sentences,
        threads=args.threads,
        batch_size=CHUNK,
    )


def score(args: argparse.Namespace) -> None:
    rows = load_rows(ClassifierData(), "dev", None, args.sample, args.seed)
    path = OUT / f"{args.name}.jsonl"
    done = {str(line["id"]) for _, line in iter_jsonl(str(path))} if path.exists() else set()
    todo = [row for row in rows if row[0] not in done]
    if not todo:
        print(f"{args.name}: all {len(rows)} claims scored ({path})")
        return
    classifier = _classifier(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as sink:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            t0 = time.perf_counter()
            scores = classifier.predict([{"claim": f["claim"], "evidence": f["evidence"]} for _, f, _ in chunk])
            seconds = (time.perf_counter() - t0) / len(chunk)
            for (claim_id, _, _), s in zip(chunk, scores, strict=True):
                sink.write(json.dumps({"id": claim_id, "pred": s.label, "p": s.probabilities, "s": seconds}) + "\n")
            sink.flush()
    print(f"{args.name}: {len(todo)} claims scored -> {path}")


def _cost(artifact: Path | None) -> dict[str, Any]:
    """Trainable parameters and training seconds from a composed artifact's provenance."""
    if artifact is None:
        return {}
    data = json.loads((artifact / "provenance.json").read_text(encoding="utf-8"))
    return {"params": data.get("trainable_parameters"), "train_s": data.get("training", {}).get("train_seconds")}


def report(args: argparse.Namespace) -> None:
    gold_rows = load_rows(ClassifierData(), "dev", None, None, 0)
    gold = {claim_id: label for claim_id, _, label in gold_rows}
    systems: dict[str, dict[str, str]] = {}
    extra: dict[str, dict[str, Any]] = {}
    artifacts = dict(item.split("=", 1) for item in args.artifacts)
    for path in sorted(OUT.glob("*.jsonl")):
        lines = [line for _, line in iter_jsonl(str(path))]
        name = path.stem
        systems[name] = {str(line["id"]): line["pred"] for line in lines}
        artifact = Path(artifacts[name]) if name in artifacts else None
        extra[name] = {"ms": 1000 * sum(line["s"] for line in lines) / len(lines), **_cost(artifact)}
    for item in args.also:
        name, file = item.split("=", 1)
        dump = json.loads(Path(file).read_text(encoding="utf-8"))[PREDICTORS_TITLE]
        key = args.also_key or next(iter(dump["systems"]))
        systems[name] = {i: p for i, p in dump["systems"][key].items() if i in gold}
    scored = set.intersection(*(set(s) for s in systems.values()))
    majority = max(TWO, key=lambda label: sum(gold[i] == label for i in scored))
    systems["majority class"] = {i: majority for i in scored}
    for name in list(systems):
        systems[name] = {i: p for i, p in systems[name].items() if i in scored}
    lines = comparison_table(
        f"COVID-Fact dev, {len(scored)} claims", systems, {i: gold[i] for i in scored}, TWO, args.baseline
    )
    header = "| predictor | trainable parameters | training s (one core) | inference ms / claim |"
    lines += ["", header, "|---|---|---|---|"]
    for name, info in extra.items():
        params = f"{info['params']:,}" if info.get("params") is not None else "—"
        train = f"{info['train_s']:,.0f}" if info.get("train_s") is not None else "—"
        lines.append(f"| {name} | {params} | {train} | {info['ms']:.0f} |")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_fresh = sub.add_parser("fresh", help="save an untrained LoRA")
    p_fresh.add_argument("folder", type=Path)
    p_fresh.add_argument("--base-model", default="smollm2-135m-instruct")
    p_fresh.add_argument("--seed", type=int, default=0)
    p_score = sub.add_parser("score", help="predict COVID-Fact dev with one artifact (resumable)")
    p_score.add_argument("--name", required=True)
    p_score.add_argument("--artifact", type=Path, default=None, help="a composed artifact (default: the base model)")
    p_score.add_argument("--fresh", type=Path, default=Path("runs/reasoning-lora-cpu/fresh/best"))
    p_score.add_argument("--base-model", default="smollm2-135m-instruct")
    p_score.add_argument("--max-input-tokens", type=int, default=192, help="the base model's prompt budget")
    p_score.add_argument("--max-evidence-sentences", type=int, default=3, help="the base model's evidence cut")
    p_score.add_argument("--sample", type=int, default=None)
    p_score.add_argument("--seed", type=int, default=0)
    p_score.add_argument("--threads", type=int, default=1)
    p_report = sub.add_parser("report", help="the table")
    p_report.add_argument("--baseline", default="zero-shot")
    p_report.add_argument("--artifacts", nargs="*", default=[], help="NAME=ARTIFACT for the cost columns")
    p_report.add_argument("--also", nargs="*", default=[], help="NAME=FILE from veracity_predictors.py --json")
    p_report.add_argument("--also-key", default="stance_features:veracity-stance-features")
    args = parser.parse_args()
    if args.command == "fresh":
        fresh(args.folder, args.base_model, args.seed)
    elif args.command == "score":
        score(args)
    else:
        report(args)


if __name__ == "__main__":
    main()

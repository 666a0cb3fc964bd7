"""The entailed-justification paper's procedure against the default pipeline, same models, same claims.

    .venv/bin/python benchmarks/reference_pipeline.py --claims 10 --threads 1 [--out runs/reference]

Reference (shared/papers/entailed-opinion-justifications.txt, IBE-4/TBE-3 as its prompts describe
it), on the default pipeline's own SmolLM2-135M (llama.cpp): each evidence sentence classified by
free generation with the paper's prompt ID 9 and parsed (the first SUPPORT / REFUTE in the answer;
neither: the sentence is left out), then both justifications always generated (prompts 10 and 11,
the shipped templates; a side without sentences is written from the model's own knowledge, as in the
paper) with ``max_tokens`` 1024, one request at a time, the KV cache reset before every request (no
prefix reuse), and the veracity from the shipped veracity encoder over claim + both justifications
(the paper's TBE-3 ELM). The default pipeline is ``verify(force=True)`` as shipped (evidence model,
justify, the stance-features verdict). Both run in one process on the same COVID-Fact dev claims
(seeded sample), interleaved claim by claim; per-claim results are cached in ``--out`` (a rerun
resumes). Reports claims/s of each, the ratio, and accuracy / macro-F1 with bootstrap CIs.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any

from claimflow import PipelineConfig, Verifier
from claimflow.evals.metrics import accuracy, macro_f1
from claimflow.evals.stats import bootstrap_ci, paired_bootstrap
from claimflow.llm.base import Message

ARTIFACTS = Path(__file__).resolve().parents[1] / "src" / "claimflow" / "artifacts"
LABELS = ("SUPPORTED", "REFUTED")
STANCE_SYSTEM = "You are an evidence classifier that determines whether a sentence supports or refutes a given claim."
STANCE_USER = (
    "Task: Analyze the sentence below and classify its relationship to the given claim. Classification Rules: "
    "1. SUPPORT - The sentence provides evidence that supports the claim. 2. REFUTE- The sentence provides "
    "evidence that contradicts or refutes the claim. Claim: {claim} Sentence to classify: {sentence} Carefully "
    "analyze the sentence and respond with: 1. A classification (SUPPORT or REFUTE)."
)  # prompt ID 9 without its "Label for Claim" line (the gold label has no place at inference)
ANSWER = re.compile(r"\b(SUPPORT|REFUTE)", re.IGNORECASE)


class Reference:
    def __init__(self, verifier: Verifier, max_tokens: int) -> None:
        from claimflow.predictors.encoder import EncoderClassifier

        components = verifier.components
        backend: Any = components.backend(verifier.config.justify.backend)
        while hasattr(backend, "inner"):
            backend = backend.inner
        self.backend = backend
        self.templates = {side: components.templates[f"justify_{side}"] for side in ("support", "refute")}
        self.veracity = EncoderClassifier(ARTIFACTS / "veracity-encoder")
        self.max_tokens = max_tokens
        self.penalty = verifier.config.justify.repetition_penalty

    def _generate(self, messages: list[Message], max_tokens: int) -> str:
        llm = self.backend.llm
        llm.reset()  # no prefix reuse
        tokens = self.backend.chat.bos + self.backend.encode_chat(messages)
        out: Any = llm.create_completion(
            prompt=tokens,
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            repeat_penalty=self.penalty,
            stop=self.backend.chat.stop or None,
        )
        return str(out["choices"][0]["text"])

    def run(self, claim: str, evidence: list[str]) -> dict[str, Any]:
        sides: dict[str, list[str]] = {"support": [], "refute": []}
        answers = []
        for sentence in evidence:
            answer = self._generate(
                [Message("system", STANCE_SYSTEM), Message("user", STANCE_USER.format(claim=claim, sentence=sentence))],
                64,
            )
            answers.append(answer)
            found = ANSWER.search(answer)
            if found:
                sides["support" if found.group(1).upper() == "SUPPORT" else "refute"].append(sentence)
        justifications = {}
        for side, template in self.templates.items():
            rendered = template.render({"claim": claim, "evidence": sides[side]})
            justifications[side] = self._generate(list(rendered.messages), self.max_tokens).strip()
        (verdict,) = self.veracity.predict(
            [
                {
                    "claim": claim,
                    "support_justification": justifications["support"],
                    "refute_justification": justifications["refute"],
                }
            ]
        )
        return {"label": verdict.label, "stance_answers": answers, "justifications": justifications}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("runs/reference"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--report-only", action="store_true", help="report on what is cached, run nothing")
    args = parser.parse_args()
    from claimflow.evals.datasets import load_dataset

    dev = load_dataset("covidfact", "dev", args.data)
    items = random.Random(args.seed).sample(list(dev), min(args.claims, len(dev)))
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / f"covidfact-dev-seed{args.seed}.jsonl"
    done = {}
    if cache.exists():
        done = {r["id"]: r for r in map(json.loads, cache.read_text(encoding="utf-8").splitlines())}
    todo = [x for x in items if x.id not in done]
    if todo and not args.report_only:
        import torch

        config = PipelineConfig()
        if args.threads:
            torch.set_num_threads(args.threads)
            backends = {k: b.model_copy(update={"threads": args.threads}) for k, b in config.backends.items()}
            config = config.model_copy(update={"backends": backends})
        verifier = Verifier(config).load()
        reference = Reference(verifier, args.max_tokens)
        verifier.verify(items[0].claim, list(items[0].evidence), force=True)  # warm-up: loads every stage
        with cache.open("a", encoding="utf-8") as sink:
            for x in todo:
                start = time.perf_counter()
                result = verifier.verify(x.claim, list(x.evidence), force=True)
                ours_s = time.perf_counter() - start
                start = time.perf_counter()
                ref = reference.run(x.claim, list(x.evidence))
                ref_s = time.perf_counter() - start
                row = {
                    "id": x.id,
                    "gold": x.label,
                    "ours": result.veracity.label if result.veracity else None,
                    "ours_s": ours_s,
                    "reference": ref["label"],
                    "reference_s": ref_s,
                    "reference_detail": ref,
                }
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                done[x.id] = row
        verifier.close()
    rows = [done[x.id] for x in items if x.id in done]
    if len(rows) < 2:
        raise SystemExit(f"{len(rows)} claims scored so far: nothing to report")
    gold = [r["gold"] for r in rows]
    ours_pred, ref_pred = [r["ours"] for r in rows], [r["reference"] for r in rows]
    f1 = macro_f1(LABELS)
    ours_sec, ref_sec = [r["ours_s"] for r in rows], [r["reference_s"] for r in rows]
    print(f"{len(rows)} COVID-Fact dev claims (seed {args.seed}), interleaved claim by claim; threads {args.threads}")
    print()
    print("| pipeline | claims/s | median s/claim | accuracy [95% CI] | macro-F1 [95% CI] |")
    print("|---|---|---|---|---|")
    for name, preds, seconds in (("default", ours_pred, ours_sec), ("reference", ref_pred, ref_sec)):
        acc_ci, f1_ci = bootstrap_ci(gold, preds, accuracy), bootstrap_ci(gold, preds, f1)
        print(
            f"| {name} | {len(seconds) / sum(seconds):.4f} | {statistics.median(seconds):.1f} | "
            f"{accuracy(gold, preds):.3f} [{acc_ci[0]:.3f}, {acc_ci[1]:.3f}] | "
            f"{f1(gold, preds):.3f} [{f1_ci[0]:.3f}, {f1_ci[1]:.3f}] |"
        )
    answers = [a for r in rows for a in r["reference_detail"]["stance_answers"]]
    parsed = sum(ANSWER.search(a) is not None for a in answers)
    print(f"\nreference stance answers parsed: {parsed} of {len(answers)} sentences (the rest left out)")
    ratio = statistics.median(r / o for r, o in zip(ref_sec, ours_sec, strict=True))
    diff = paired_bootstrap(gold, ours_pred, ref_pred, accuracy, n_resamples=2000, seed=0)
    print()
    print(
        f"speed: the default is {sum(ref_sec) / sum(ours_sec):.2f}x the reference's claims/s (median per-claim ratio "
        f"{ratio:.2f}x); accuracy default - reference {diff.difference:+.3f} [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]"
    )


if __name__ == "__main__":
    main()

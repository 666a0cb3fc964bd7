"""A quality check of teacher-written reasoning rows (issue #14), label-free and cheap.

    .venv/bin/python benchmarks/reasoning_quality.py runs/reasoning05/difference_cot-train.jsonl \\
        runs/reasoning05/entity_cot-train.jsonl [--show 3]

EntityCoT (the teacher is asked for a paragraph, then the entities of the claim and of its evidence as
``{'Claim': [...], 'Context': [...]}``): the share of rows whose target ends in such a dict, and of the listed
entities that occur (case-insensitively, as a substring) in the claim or in the evidence respectively:
an entity found nowhere was invented. DifferenceCoT (free text comparing the claim with its
evidence): length in words, the share of rows cut at the token cap (no sentence-final punctuation at
the end), and the share of the claim's content words the explanation mentions. ``--show N`` prints N
seeded rows of each file for a reviewer.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import random
import re
import statistics
from pathlib import Path
from typing import Any

WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = (
    "a an the of to in on for and or is are was were be been by with from at as that this it its into than then has "
    "have had not no do does did can could may might will would should"
)
STOP = frozenset(STOP_WORDS.split())


def _rows(path: Path) -> list[dict[str, Any]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def _entities(target: str) -> dict[str, list[str]] | None:
    """The last ``{'Claim': [...], 'Context': [...]}`` of a target (the template asks for a paragraph and
    then that dict; JSON or Python quoting), or None when there is none (e.g. cut at the token cap)."""
    end = target.rfind("}")
    start = target.rfind("{", 0, end)
    while start >= 0:
        text = target[start : end + 1]
        for parse in (json.loads, ast.literal_eval):
            try:
                data = parse(text)
            except (ValueError, SyntaxError):
                continue
            if isinstance(data, dict) and all(isinstance(data.get(k), list) for k in ("Claim", "Context")):
                return {k: [str(v) for v in data[k]] for k in ("Claim", "Context")}
        start = target.rfind("{", 0, start)
    return None


def entity_cot(rows: list[dict[str, Any]]) -> None:
    parsed = found_claim = found_context = listed_claim = listed_context = 0
    for row in rows:
        entities = _entities(row["target"])
        if entities is None:
            continue
        parsed += 1
        claim, context = row["claim"].lower(), " ".join(row["evidence"]).lower()
        listed_claim += len(entities["Claim"])
        listed_context += len(entities["Context"])
        found_claim += sum(e.lower() in claim for e in entities["Claim"])
        found_context += sum(e.lower() in context for e in entities["Context"])
    print("| rows | parsed as {Claim: [...], Context: [...]} | claim entities found in the claim | "
          "context entities found in the evidence |")  # fmt: skip
    print("|---|---|---|---|")
    print(
        f"| {len(rows)} | {parsed / max(len(rows), 1):.1%} | {found_claim}/{listed_claim} "
        f"({found_claim / max(listed_claim, 1):.1%}) | {found_context}/{listed_context} "
        f"({found_context / max(listed_context, 1):.1%}) |"
    )


def difference_cot(rows: list[dict[str, Any]]) -> None:
    lengths = [len(row["target"].split()) for row in rows]
    cut = sum(not row["target"].rstrip().endswith((".", "!", "?", '"', ")", "*")) for row in rows)
    coverage = []
    for row in rows:
        words = {w for w in WORD.findall(row["claim"].lower()) if w not in STOP}
        said = set(WORD.findall(row["target"].lower()))
        if words:
            coverage.append(len(words & said) / len(words))
    print("| rows | words (median, min-max) | cut at the token cap | claim content words mentioned (mean) |")
    print("|---|---|---|---|")
    print(
        f"| {len(rows)} | {statistics.median(lengths):.0f} ({min(lengths)}-{max(lengths)}) | "
        f"{cut / max(len(rows), 1):.1%} | {statistics.mean(coverage):.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--show", type=int, default=0)
    args = parser.parse_args()
    for path in args.files:
        rows = _rows(path) if path.exists() else []
        if not rows:
            print(f"\n{path}: no rows")
            continue
        task = rows[0]["task"]
        print(f"\n### {path.name}: {task}, teacher {rows[0].get('source')}\n")
        {"entity_cot": entity_cot, "difference_cot": difference_cot}.get(task, lambda _: None)(rows)
        for row in random.Random(0).sample(rows, min(args.show, len(rows))):
            print(f"\n- claim: {row['claim']}\n  target: {row['target'][:600]!r}")


if __name__ == "__main__":
    main()

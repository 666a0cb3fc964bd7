"""Evidence as the pipeline hands it to ``veracity``: scored by the evidence model, most relevant first.

The veracity stage reads the claim's evidence after ``evidence_stance`` has scored it, sorted by
relevance (:mod:`claimflow.graphs.nodes.veracity`). A veracity model trained on the dataset's own
sentence order would see another input than it gets in ``verify`` (a long SciFact abstract cut at
256 tokens keeps its first sentences, not its most relevant ones), so the training sets are written
in the pipeline's order once, here, with each sentence's stance and relevance kept for the
stance-summary predictors. One JSON line per claim, appended as it finishes: a killed run resumes.
No gold label is read or written.

    python -m claimflow.finetune.ranked_evidence --dataset scifact --split train -o runs/ranked/scifact-train.jsonl

``--dataset climate_fever --split train_part|dev_part`` reads the seeded by-claim split of the
multi-task data (:func:`claimflow.finetune.multitask_data.climate_fever_parts`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from claimflow.batch import done_ids, repair_tail
from claimflow.errors import InputError
from claimflow.evals.datasets import Example, load_dataset
from claimflow.io import prepare_output
from claimflow.predictors.multitask import MultitaskEncoder

__all__ = ["claims_of", "rank_claim", "write_ranked"]

log = logging.getLogger(__name__)
PARTS = {"train_part": 0, "dev_part": 1}


def claims_of(dataset: str, split: str, data_dir: Path | None = None) -> list[Example]:
    """A dataset split; ``train_part`` / ``dev_part`` of Climate-FEVER is the multi-task data's by-claim split."""
    if split in PARTS:
        from claimflow.finetune.multitask_data import MultitaskData, climate_fever_parts

        if dataset != "climate_fever":
            raise InputError(f"split {split!r} exists only for climate_fever, not {dataset!r}")
        data = MultitaskData()
        return climate_fever_parts(data_dir, data.dev_fraction, data.split_seed)[PARTS[split]]
    return load_dataset(dataset, split, data_dir)


def rank_claim(model: MultitaskEncoder, claim: str, evidence: Sequence[str]) -> dict[str, Any]:
    """Every sentence with its relevance and stance, most relevant first (ties keep the given order)."""
    stances, relevance = model.stance_and_relevance(claim, evidence)
    scores = relevance if relevance is not None else [0.0] * len(evidence)
    order = sorted(range(len(evidence)), key=lambda i: -scores[i])
    return {
        "evidence": [evidence[i] for i in order],
        "relevance": [round(scores[i], 5) for i in order],
        "stance": [{k: round(v, 5) for k, v in stances[i].probabilities.items()} for i in order],
        "position": order,
    }


def write_ranked(examples: Sequence[Example], model: MultitaskEncoder, out: Path) -> int:
    """Append one ranked line per claim of ``examples`` not yet in ``out``; returns the number written."""
    prepare_output(out)
    repair_tail(out)
    seen = done_ids(out)
    written = 0
    with out.open("a", encoding="utf-8") as sink:
        for ex in examples:
            if ex.id in seen or not ex.evidence:
                continue
            record = {"id": ex.id, "dataset": ex.source, **rank_claim(model, ex.claim, ex.evidence)}
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            written += 1
    return written


def main(argv: Sequence[str] | None = None) -> None:
    from claimflow.graphs.components import shipped_artifact

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="multi-task artifact; default: the shipped one")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first N claims only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    examples = claims_of(args.dataset, args.split, args.data_dir)[: args.limit or None]
    model = MultitaskEncoder(args.model or shipped_artifact("evidence-multitask"), threads=args.threads)
    start = time.perf_counter()
    written = write_ranked(examples, model, args.out)
    log.info(
        "%s: %d claims ranked in %.0f s (%d in the file)",
        args.out,
        written,
        time.perf_counter() - start,
        len(done_ids(args.out)),
    )


if __name__ == "__main__":
    main()

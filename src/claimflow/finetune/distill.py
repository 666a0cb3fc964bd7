"""Distillation: run the graph's stance and justify stages over a dataset to build a justification dataset.

The entailed-justification method trains a veracity classifier on the claim plus a GLM-written
supporting and refuting justification. Its reference code put the gold label into the prompts;
here the pipeline only ever sees ``{id, claim, evidence}`` (:func:`unlabelled_items` drops
everything else, a test checks the prompts) and the gold labels are joined back by id at training
time (:func:`claimflow.finetune.classifier.load_rows`).

One JSONL line per claim, appended and fsync'ed as soon as it is done: a rerun after a crash skips
the ids already written. A SQLite cache keyed by the content (claim, evidence and the pipeline's
prompts and models) lets another run over overlapping data reuse finished work.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from claimflow.batch import done_ids, repair_tail
from claimflow.config import PipelineConfig, StageName
from claimflow.errors import ClaimflowError, InputError
from claimflow.evals.datasets import Example
from claimflow.io import prepare_output
from claimflow.verifier import Verifier

DISTILL_STAGES: tuple[StageName, ...] = ("evidence_stance", "justify")


def unlabelled_items(examples: Sequence[Example], *, sample: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """``{id, claim, evidence}`` of each example: no label, no evidence labels, no metadata."""
    chosen = list(examples)
    if sample is not None and sample < len(chosen):
        chosen = random.Random(seed).sample(chosen, sample)
    return [{"id": ex.id, "claim": ex.claim, "evidence": list(ex.evidence)} for ex in chosen]


def distill_config(base: PipelineConfig | None = None) -> PipelineConfig:
    """``base`` (default: the default pipeline) restricted to the stance and justify stages."""
    return (base or PipelineConfig()).with_stages(DISTILL_STAGES)


def pipeline_fingerprint(verifier: Verifier) -> str:
    """What the distilled text depends on besides the claim: prompts, models and generation settings."""
    cfg = verifier.config
    parts = {
        # a trained stance model is named with its weights hash, so a new model never reuses old rows
        "prompts": {
            **verifier.components.prompt_refs(),
            "evidence_stance": verifier.components.stage_ref("evidence_stance"),
        },
        "backends": {k: cfg.backends[k].model_dump(mode="json") for k in sorted(cfg.backends)},
        "stance": cfg.evidence_stance.model_dump(mode="json"),
        "justify": cfg.justify.model_dump(mode="json"),
        "limits": cfg.limits.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def content_key(claim: str, evidence: Sequence[str], fingerprint: str) -> str:
    payload = json.dumps({"claim": claim, "evidence": list(evidence), "pipeline": fingerprint}, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class DistillCache:
    """Finished distilled rows by content key (SQLite; safe to share between runs)."""

    def __init__(self, path: str | Path) -> None:
        prepare_output(Path(path))
        self._db = sqlite3.connect(str(path))
        self._db.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        found = self._db.execute("SELECT row FROM rows WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def put(self, key: str, row: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?)", (key, json.dumps(row, ensure_ascii=False)))
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def distill_row(verifier: Verifier, item: dict[str, Any]) -> dict[str, Any]:
    """The stances and both justifications of one unlabelled item."""
    result = verifier.verify(item["claim"], item["evidence"], force=True)
    if result.justifications is None:
        raise InputError(f"{item['id']}: no justifications were produced (status {result.status})")
    return {
        "support_justification": result.justifications.support.text,
        "refute_justification": result.justifications.refute.text,
        "support_generated": result.justifications.support.generated,
        "refute_generated": result.justifications.refute.generated,
        "stances": [s.label for s in result.evidence_stances],
        "stance_probabilities": [s.probabilities for s in result.evidence_stances],
        "relevance": [s.relevance for s in result.evidence_stances],
        "prompts": result.provenance.prompts,
        "seconds": round(result.provenance.total_seconds, 3),
    }


def run_distill(
    verifier: Verifier,
    items: Sequence[dict[str, Any]],
    output: Path,
    *,
    cache: DistillCache | None = None,
    on_item: Callable[[str, bool], None] | None = None,
) -> dict[str, int]:
    """Distill ``items`` into ``output`` (JSONL), resuming after what is already there.

    An item whose input is unusable (e.g. no evidence) gets an ``error`` line and the run goes on.
    """
    if set(verifier.config.stages) != set(DISTILL_STAGES):
        raise InputError(f"distillation runs exactly the stages {DISTILL_STAGES}, not {verifier.config.stages}")
    for item in items:
        if set(item) - {"id", "claim", "evidence"}:
            raise InputError(f"{item.get('id')}: distillation items carry only id, claim and evidence (no labels)")
    fingerprint = pipeline_fingerprint(verifier)
    prepare_output(output)
    repair_tail(output)
    finished = done_ids(output)
    counts = {"total": len(items), "skipped": 0, "cached": 0, "written": 0, "errors": 0}
    with output.open("a", encoding="utf-8") as out:
        for item in items:
            item_id = str(item["id"])
            if item_id in finished:
                counts["skipped"] += 1
                if on_item:
                    on_item(item_id, False)
                continue
            key = content_key(item["claim"], item["evidence"], fingerprint)
            line: dict[str, Any] = {**item, "content_key": key, "pipeline": fingerprint}
            row = cache.get(key) if cache else None
            if row is not None:
                counts["cached"] += 1
            else:
                try:
                    row = distill_row(verifier, item)
                except InputError as exc:
                    line["error"] = {"type": type(exc).__name__, "message": str(exc)}
                    counts["errors"] += 1
                except ClaimflowError:
                    raise
                if row is not None and cache is not None:
                    cache.put(key, row)
            if row is not None:
                line.update(row)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
            counts["written"] += 1
            if on_item:
                on_item(item_id, True)
    write_provenance(output, verifier, fingerprint, counts)
    return counts


def write_provenance(output: Path, verifier: Verifier, fingerprint: str, counts: dict[str, int]) -> None:
    from claimflow.provenance import stamp

    cfg = verifier.config
    provenance = {
        "kind": "distilled_justifications",
        "output": output.name,
        "pipeline_fingerprint": fingerprint,
        # a trained stance model is named with its weights hash, so a new model never reuses old rows
        "prompts": {
            **verifier.components.prompt_refs(),
            "evidence_stance": verifier.components.stage_ref("evidence_stance"),
        },
        "backends": {k: cfg.backends[k].model_dump(mode="json") for k in sorted(cfg.backends)},
        "config": cfg.model_dump(mode="json"),
        "counts_last_run": counts,
        "gold_labels_seen": False,
        **stamp(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = output.with_name(output.name + ".provenance.json")
    path.write_text(json.dumps(provenance, indent=2), encoding="utf-8")

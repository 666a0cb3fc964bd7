"""Climate-FEVER (the ``claims.jsonl`` subset): claims with 5 evidence sentences and their stances."""

from __future__ import annotations

from pathlib import Path

from claimflow.errors import InputError
from claimflow.evals.datasets.base import Example, _jsonl_records, _need, _text, resolve_data_dir


def load_climate_fever(split: str = "dev", data_dir: str | Path | None = None) -> list[Example]:
    """Climate-FEVER (the ``claims.jsonl`` subset, split ``dev``): 5 evidence sentences with stances.

    Claim labels SUPPORTS/REFUTES/NOT_ENOUGH_INFO/DISPUTED; evidence labels SUPPORTS/REFUTES/
    NOT_ENOUGH_INFO. ``meta`` keeps evidence ids, articles, annotator votes and entropies.
    """
    if split != "dev":
        raise InputError(f"climate_fever has one split here, 'dev' (claims.jsonl), not {split!r}")
    path = resolve_data_dir(data_dir) / "climate_fever" / "claims.jsonl"
    examples = []
    for number, record in _jsonl_records(path):
        where = f"{path}:{number}"
        _need(record, ("claim_id", "claim", "claim_label", "evidences"), where)
        evidences = record["evidences"]
        for evidence in evidences:
            _need(evidence, ("evidence", "evidence_label"), where)
        examples.append(
            Example(
                id=str(record["claim_id"]),
                claim=_text(record["claim"], where),
                evidence=[_text(e["evidence"], where) for e in evidences],
                label=_text(record["claim_label"], where),
                evidence_labels=[_text(e["evidence_label"], where) for e in evidences],
                split=split,
                source="climate_fever",
                meta={
                    "evidence_ids": [e.get("evidence_id") for e in evidences],
                    "articles": [e.get("article") for e in evidences],
                    "votes": [e.get("votes") for e in evidences],
                    "entropies": [e.get("entropy") for e in evidences],
                },
            )
        )
    return examples

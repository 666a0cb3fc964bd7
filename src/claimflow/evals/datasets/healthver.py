"""HealthVer: evidence-claim pairs with stances, grouped by claim."""

from __future__ import annotations

from pathlib import Path

from claimflow.evals.datasets.base import Example, _csv_rows, _need, resolve_data_dir


def load_healthver(split: str = "dev", data_dir: str | Path | None = None) -> list[Example]:
    """HealthVer evidence-claim pairs, grouped by claim (first-seen order): one Example per claim.

    The claim has no label of its own (``label=None``); ``evidence_labels`` holds each pair's
    Supports/Refutes/Neutral; ``meta["pair_ids"]`` the pair ids. Repeated pairs are kept as shipped.
    """
    path = resolve_data_dir(data_dir) / "healthver" / f"{split}.csv"
    groups: dict[str, list[dict[str, str]]] = {}
    for line, row in _csv_rows(path):
        _need(row, ("id", "evidence", "claim", "label"), f"{path}:{line}")
        groups.setdefault(row["claim"].strip(), []).append(row)
    return [
        Example(
            id=f"healthver-{rows[0]['id'].strip()}",
            claim=claim,
            evidence=[row["evidence"].strip() for row in rows],
            label=None,
            evidence_labels=[row["label"].strip() for row in rows],
            split=split,
            source="healthver",
            meta={
                "pair_ids": [row["id"].strip() for row in rows],
                "topic_ip": rows[0].get("topic_ip", "").strip(),
                "question": rows[0].get("question", "").strip(),
            },
        )
        for claim, rows in groups.items()
    ]

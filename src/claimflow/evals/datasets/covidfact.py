"""COVID-Fact: claims with 1-5 evidence sentences, label SUPPORTED/REFUTED."""

from __future__ import annotations

from pathlib import Path

from claimflow.evals.datasets.base import DataFormatError, Example, _jsonl_records, _need, _text, resolve_data_dir


def load_covidfact(split: str, data_dir: str | Path | None = None) -> list[Example]:
    """COVID-Fact: claim, 1-5 evidence sentences, label SUPPORTED/REFUTED; ids are ``covidfact-<split>-<n>``."""
    path = resolve_data_dir(data_dir) / "covidfact" / f"{split}.jsonl"
    examples = []
    for index, (number, record) in enumerate(_jsonl_records(path)):
        where = f"{path}:{number}"
        _need(record, ("claim", "label", "evidence"), where)
        evidence = record["evidence"]
        if not isinstance(evidence, list):
            raise DataFormatError(f"{where}: 'evidence' must be a list")
        examples.append(
            Example(
                id=f"covidfact-{split}-{index}",
                claim=_text(record["claim"], where),
                evidence=[_text(sentence, where) for sentence in evidence],
                label=_text(record["label"], where),
                split=split,
                source="covidfact",
                meta={"url": record.get("source")},
            )
        )
    return examples

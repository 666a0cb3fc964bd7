"""CheckThat! 2024 Task 1 (English): check-worthiness sentences, label Yes/No."""

from __future__ import annotations

from pathlib import Path

from claimflow.evals.datasets.base import Example, _jsonl_records, _need, _text, resolve_data_dir


def _unquote(text: str) -> str:
    """Undo CSV quoting left in the CT24 text: outer quotes dropped, doubled inner quotes halved.

    In the shipped files every text holding a comma or a quote is wrapped in quotes with inner
    quotes doubled, and no other text is: the TSV was written with CSV quoting and never unquoted.
    """
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def load_checkthat2024(split: str, data_dir: str | Path | None = None, *, unquote: bool = True) -> list[Example]:
    """CheckThat! 2024 Task 1 English check-worthiness: the sentence in ``claim``, label Yes/No.

    ``unquote`` removes the CSV quoting left in about half the texts (the raw text goes to
    ``meta["raw_text"]`` when it changed).
    """
    path = resolve_data_dir(data_dir) / "checkthat2024_en" / f"{split}.jsonl"
    examples = []
    for number, record in _jsonl_records(path):
        where = f"{path}:{number}"
        _need(record, ("id", "text", "label"), where)
        raw = _text(record["text"], where)
        text = _unquote(raw) if unquote else raw
        meta = {"raw_text": raw} if text != raw else {}
        examples.append(
            Example(
                id=str(record["id"]),
                claim=text,
                label=_text(record["label"], where),
                split=split,
                source="checkthat2024_en",
                meta=meta,
            )
        )
    return examples

"""ClaimBuster two_class and the CLEF 2019/2020 check-worthiness extras, deduplicated against CheckThat! 2024."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from claimflow.errors import InputError
from claimflow.evals.datasets.base import DataFormatError, Example, _csv_rows, _need, _read, _text, resolve_data_dir
from claimflow.evals.datasets.checkthat import load_checkthat2024

logger = logging.getLogger(__name__)

_CB_FILES: dict[str, tuple[str, str]] = {  # split -> (file under claimbuster/, kind)
    "two_class_train": ("two_class/train.json", "two_class"),
    "two_class_test": ("two_class/test.json", "two_class"),
    "two_class_kfold": ("two_class/kfold_25ncs.json", "two_class"),
    "clef19_train": ("clef19/CT19-T1-Training.csv", "clef19"),
    "clef19_test": ("clef19/CT19-T1-Test.csv", "clef19"),
    "clef20_t1_train": ("clef20/task1/training_v2.tsv", "clef20_t1"),
    "clef20_t1_dev": ("clef20/task1/dev_v2.tsv", "clef20_t1"),
    "clef20_t1_test": ("clef20/task1/test-gold.tsv", "clef20_t1"),
    "clef20_t5_train": ("clef20/task5/train.tsv", "clef20_t5"),
    "clef20_t5_test": ("clef20/task5/test-gold.tsv", "clef20_t5"),
}
CLAIMBUSTER_SPLITS = (*_CB_FILES, "all")


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _claimbuster_file(root: Path, split: str) -> list[Example]:
    name, kind = _CB_FILES[split]
    path = root / "claimbuster" / name
    examples = []
    if kind == "two_class":  # sentence_id shares CT24's id space: kept as the id
        try:
            records = json.loads(_read(path))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON: {exc}") from exc
        for index, record in enumerate(records):
            where = f"{path}[{index}]"
            _need(record, ("sentence_id", "label", "text"), where)
            text, label = _text(record["text"], where), str(record["label"])
            examples.append(_cb_example(str(record["sentence_id"]), text, label, split, {}))
    else:
        for line, row in _csv_rows(path, "," if name.endswith(".csv") else "\t"):
            where = f"{path}:{line}"
            meta: dict[str, Any]
            if kind == "clef19":
                _need(row, ("line_number", "speaker", "text", "label", "file_name"), where)
                id_ = f"clef19:{row['file_name']}:{row['line_number']}"
                text, label, meta = row["text"], row["label"], {"speaker": row["speaker"], "file": row["file_name"]}
            elif kind == "clef20_t1":
                label_field = "check_worthiness" if "check_worthiness" in row else "claim_worthiness"
                _need(row, ("tweet_id", "tweet_text", label_field), where)
                id_ = f"clef20t1:{row['tweet_id']}"
                text, label = row["tweet_text"], row[label_field]
                meta = {"topic_id": row.get("topic_id"), "url": row.get("tweet_url"), "claim": row.get("claim")}
            else:
                _need(row, ("text", "label"), where)
                id_, text, label, meta = f"clef20t5:{split}:{line}", row["text"], row["label"], {}
            examples.append(_cb_example(id_, text.strip(), label.strip(), split, meta))
    return examples


def _cb_example(id_: str, text: str, label: str, split: str, meta: dict[str, Any]) -> Example:
    return Example(id=id_, claim=text, label=label, split=split, source="claimbuster", meta={"subset": split, **meta})


def load_claimbuster(split: str, data_dir: str | Path | None = None, *, dedupe: bool = True) -> list[Example]:
    """ClaimBuster two_class and CLEF 2019/2020 check-worthiness extras, label ``"0"``/``"1"``.

    ``dedupe`` (default) drops items already in CheckThat! 2024 (train, dev and dev-test): by id for
    two_class (its ``sentence_id`` is CT24's id), by whitespace/case-normalized text for all; it needs
    ``checkthat2024_en/`` beside. Split ``all`` joins every labelled file, deduplicated by text too.
    """
    if split not in CLAIMBUSTER_SPLITS:
        raise InputError(f"unknown claimbuster split {split!r}; choose from {', '.join(CLAIMBUSTER_SPLITS)}")
    root = resolve_data_dir(data_dir)
    examples = [e for s in (tuple(_CB_FILES) if split == "all" else (split,)) for e in _claimbuster_file(root, s)]
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    if dedupe:
        for ct_split in ("train", "dev", "dev-test"):
            for ct in load_checkthat2024(ct_split, root):
                seen_ids.add(ct.id)
                seen_texts.add(_normalize(ct.claim))
    kept = []
    for example in examples:
        key = _normalize(example.claim)
        two_class = str(example.meta["subset"]).startswith("two_class")
        if (two_class and example.id in seen_ids) or key in seen_texts:
            continue
        if split == "all":  # the files overlap one another; meta["subset"] keeps the file's split
            seen_texts.add(key)
            example = example.model_copy(update={"split": "all"})
        kept.append(example)
    logger.debug("claimbuster %s: kept %d of %d", split, len(kept), len(examples))
    return kept

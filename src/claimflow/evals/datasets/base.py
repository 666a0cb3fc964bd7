"""Dataset loaders: every fact-checking dataset read into one common schema, :class:`Example`.

Labels stay in each dataset's own vocabulary (``"Yes"``, ``"SUPPORTS"``, ``"1"``...);
:mod:`claimflow.evals.labels` maps them, explicitly, onto the pipeline's label sets.

The data folder is the ``data_dir`` argument, else the ``CLAIMFLOW_DATA`` environment variable, else
``../shared/data`` relative to the current directory when that folder exists.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import os
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from claimflow.errors import InputError
from claimflow.io import decode, parse_jsonl

logger = logging.getLogger(__name__)

ENV_VAR = "CLAIMFLOW_DATA"
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"


class DataNotFoundError(InputError):
    """The data folder, or a file a loader needs inside it, does not exist."""


class DataFormatError(InputError):
    """A data file does not have the layout its loader expects."""


class Example(BaseModel):
    """One item of any dataset: a claim (or check-worthiness sentence), its evidence and gold labels.

    ``label`` is the claim-level label in the dataset's own vocabulary (``None`` when the dataset has
    none); ``evidence_labels`` is one label per evidence sentence (``None`` when not annotated).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    claim: str
    evidence: list[str] = Field(default_factory=list)
    label: str | None = None
    evidence_labels: list[str | None] | None = None
    split: str
    source: str
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aligned(self) -> Example:
        if self.evidence_labels is not None and len(self.evidence_labels) != len(self.evidence):
            raise ValueError(
                f"example {self.id!r}: {len(self.evidence_labels)} evidence labels for {len(self.evidence)} sentences"
            )
        return self


# --- files -------------------------------------------------------------------------------------


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: the argument, else ``$CLAIMFLOW_DATA``, else ``../shared/data`` when present."""
    if data_dir is not None:
        path, origin = Path(data_dir), "data_dir"
    elif os.environ.get(ENV_VAR):
        path, origin = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        path, origin = Path.cwd() / DEFAULT_DATA_DIR, "the default"
    if not path.is_dir():
        raise DataNotFoundError(
            f"data folder {path} ({origin}) does not exist: pass data_dir or set {ENV_VAR} to the folder "
            "that holds checkthat2024_en/, covidfact/, scifact/..."
        )
    return path


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataNotFoundError(f"{path} not found: is {ENV_VAR} (or data_dir) the right data folder?") from exc
    except OSError as exc:
        raise DataNotFoundError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode(data, str(path))  # utf-8, a BOM dropped; bad bytes -> InputEncodingError


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return parse_jsonl(_read(path), str(path), DataFormatError)


def _csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(_read(path), newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                raise DataFormatError(f"{path}:{reader.line_num}: wrong number of fields")
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataFormatError(f"{path}:{reader.line_num}: {exc}") from exc


def _need(record: dict[str, Any], fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if f not in record]
    if missing:
        raise DataFormatError(f"{where}: missing field(s) {missing}; has {sorted(record)}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: expected a string, got {type(value).__name__}")
    return value.strip()


def load_jsonl(path: str | Path) -> list[Example]:
    """Examples from a JSONL file already in the common schema (one :class:`Example` object a line)."""
    path = Path(path)
    examples = []
    for number, record in _jsonl_records(path):
        try:
            examples.append(Example.model_validate(record))
        except ValidationError as exc:
            raise DataFormatError(f"{path}:{number}: not an Example: {exc}") from exc
    return examples


def write_jsonl(examples: Iterable[Example], path: str | Path) -> None:
    """Write examples as JSONL (UTF-8), readable by :func:`load_jsonl`."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(example.model_dump_json() + "\n")


# --- CheckThat! 2024 -----------------------------------------------------------------------------


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


# --- COVID-Fact ----------------------------------------------------------------------------------


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


# --- SciFact -------------------------------------------------------------------------------------


_NOT_IN_A_LIST = (tokenize.NAME, tokenize.NUMBER)


def parse_abstract(text: str) -> list[str]:
    """Sentences from a numpy-repr list of strings (``['s1'\\n 's2']``, no commas between items).

    Each string literal is read with Python's tokenizer, so quotes and escapes inside sentences are
    handled as Python would.
    """
    sentences: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING:
                value = ast.literal_eval(token.string)
                if not isinstance(value, str):
                    raise ValueError(f"not a string literal: {token.string[:40]}")
                sentences.append(value.strip())
            elif (token.type == tokenize.OP and token.string not in ("[", "]")) or token.type in _NOT_IN_A_LIST:
                raise ValueError(f"unexpected {token.string!r}")
    except (tokenize.TokenError, SyntaxError, ValueError) as exc:
        raise DataFormatError(f"abstract is not a list of string literals: {exc}") from exc
    return sentences


@dataclass(frozen=True)
class ScifactDoc:
    """One abstract of the SciFact corpus."""

    doc_id: str
    title: str
    sentences: tuple[str, ...]
    structured: bool


def load_scifact_corpus(data_dir: str | Path | None = None) -> dict[str, ScifactDoc]:
    """The SciFact corpus (``scifact/corpus.csv``), by doc id (as a string)."""
    path = resolve_data_dir(data_dir) / "scifact" / "corpus.csv"
    corpus: dict[str, ScifactDoc] = {}
    for line, row in _csv_rows(path):
        where = f"{path}:{line}"
        _need(row, ("doc_id", "title", "abstract"), where)
        try:
            sentences = parse_abstract(row["abstract"])
        except DataFormatError as exc:
            raise DataFormatError(f"{where}: {exc}") from exc
        doc_id = row["doc_id"].strip()
        structured = row.get("structured", "").strip().lower() == "true"
        corpus[doc_id] = ScifactDoc(doc_id, row["title"].strip(), tuple(sentences), structured)
    return corpus


_SCIFACT_RATIONALE = {"SUPPORT": "SUPPORT", "REFUTE": "REFUTE", "CONTRADICT": "REFUTE"}


def load_scifact(
    split: str, data_dir: str | Path | None = None, *, corpus: dict[str, ScifactDoc] | None = None
) -> list[Example]:
    """SciFact: evidence = every sentence of the cited abstracts, in ``cited_doc_ids`` order.

    Evidence labels: the rationale label for rationale sentences (SUPPORT/REFUTE; CONTRADICT is read
    as REFUTE), ``"NEI"`` for the other sentences. Claim label: the rationale label, or ``"NEI"``
    when the claim has no rationale. ``meta`` keeps the doc id and sentence index of each evidence
    sentence and the original rationales.
    """
    root = resolve_data_dir(data_dir)
    path = root / "scifact" / f"claims_{split}.jsonl"
    records = list(_jsonl_records(path))
    docs = corpus if corpus is not None else load_scifact_corpus(root)
    examples = []
    for number, record in records:
        where = f"{path}:{number}"
        _need(record, ("id", "claim", "evidence", "cited_doc_ids"), where)
        rationale: dict[tuple[str, int], str] = {}
        for doc_id, sets in dict(record["evidence"]).items():
            for entry in sets:
                label = _SCIFACT_RATIONALE.get(str(entry.get("label")))
                if label is None:
                    raise DataFormatError(f"{where}: unknown rationale label {entry.get('label')!r}")
                rationale.update({(str(doc_id), int(i)): label for i in entry["sentences"]})
        claim_labels = set(rationale.values())
        if len(claim_labels) > 1:
            raise DataFormatError(f"{where}: rationales disagree ({sorted(claim_labels)})")
        evidence: list[str] = []
        labels: list[str | None] = []
        doc_ids: list[str] = []
        positions: list[int] = []
        for cited in record["cited_doc_ids"]:
            doc = docs.get(str(cited))
            if doc is None:
                raise DataFormatError(f"{where}: cited doc {cited} is not in the corpus")
            for i, sentence in enumerate(doc.sentences):
                evidence.append(sentence)
                labels.append(rationale.pop((doc.doc_id, i), "NEI"))
                doc_ids.append(doc.doc_id)
                positions.append(i)
        if rationale:
            raise DataFormatError(f"{where}: rationale sentences outside the cited abstracts: {sorted(rationale)}")
        examples.append(
            Example(
                id=str(record["id"]),
                claim=_text(record["claim"], where),
                evidence=evidence,
                label=claim_labels.pop() if claim_labels else "NEI",
                evidence_labels=labels,
                split=split,
                source="scifact",
                meta={
                    "cited_doc_ids": [str(d) for d in record["cited_doc_ids"]],
                    "evidence_doc_ids": doc_ids,
                    "evidence_sentence_index": positions,
                    "rationales": record["evidence"],
                },
            )
        )
    return examples


# --- Climate-FEVER -------------------------------------------------------------------------------


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


# --- HealthVer -----------------------------------------------------------------------------------


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


# --- ClaimBuster / CLEF extras -------------------------------------------------------------------

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


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its splits, the tasks its labels serve, and its loader."""

    name: str
    splits: tuple[str, ...]
    tasks: tuple[str, ...]
    loader: Callable[[str, Path], list[Example]]


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("checkthat2024_en", ("train", "dev", "dev-test"), ("check_worthiness",), load_checkthat2024),
        DatasetInfo("covidfact", ("train", "dev"), ("veracity",), load_covidfact),
        DatasetInfo("scifact", ("train", "dev"), ("veracity", "stance"), load_scifact),
        DatasetInfo("climate_fever", ("dev",), ("veracity", "stance"), load_climate_fever),
        DatasetInfo("healthver", ("dev",), ("stance",), load_healthver),
        DatasetInfo("claimbuster", CLAIMBUSTER_SPLITS, ("check_worthiness",), load_claimbuster),
    )
}


def load_dataset(name: str, split: str, data_dir: str | Path | None = None) -> list[Example]:
    """Load split ``split`` of registered dataset ``name`` (see :data:`DATASETS`)."""
    info = DATASETS.get(name)
    if info is None:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if split not in info.splits:
        raise InputError(f"dataset {name!r} has no split {split!r}; choose from {', '.join(info.splits)}")
    return info.loader(split, resolve_data_dir(data_dir))

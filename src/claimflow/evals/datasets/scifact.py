"""SciFact: claims over cited abstracts of a corpus, with rationale sentences."""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

from claimflow.evals.datasets.base import (
    DataFormatError,
    Example,
    _csv_rows,
    _jsonl_records,
    _need,
    _text,
    resolve_data_dir,
)

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

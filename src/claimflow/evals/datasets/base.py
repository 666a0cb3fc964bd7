"""The common schema (:class:`Example`), the data folder, the loaders' errors and file readers.

Labels stay in each dataset's own vocabulary (``"Yes"``, ``"SUPPORTS"``, ``"1"``...);
:mod:`claimflow.evals.labels` maps them, explicitly, onto the pipeline's label sets.

The data folder is the ``data_dir`` argument, else the ``CLAIMFLOW_DATA`` environment variable, else
``../shared/data`` relative to the current directory when that folder exists.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from claimflow.errors import InputError
from claimflow.io import decode, parse_jsonl

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

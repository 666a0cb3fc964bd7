"""Dataset loaders: every fact-checking dataset read into one common schema, :class:`Example`.

One module a dataset family (``checkthat``, ``covidfact``, ``scifact``, ``climate_fever``,
``healthver``, ``claimbuster``) over ``base`` (the schema, the data folder, errors and file readers);
``registry`` names them (:data:`DATASETS`, :func:`load_dataset`). Labels stay in each dataset's own
vocabulary; :mod:`claimflow.evals.labels` maps them onto the pipeline's label sets.
"""

from __future__ import annotations

from claimflow.evals.datasets.base import (
    DEFAULT_DATA_DIR,
    ENV_VAR,
    DataFormatError,
    DataNotFoundError,
    Example,
    load_jsonl,
    resolve_data_dir,
    write_jsonl,
)
from claimflow.evals.datasets.checkthat import load_checkthat2024
from claimflow.evals.datasets.claimbuster import CLAIMBUSTER_SPLITS, load_claimbuster
from claimflow.evals.datasets.climate_fever import load_climate_fever
from claimflow.evals.datasets.covidfact import load_covidfact
from claimflow.evals.datasets.healthver import load_healthver
from claimflow.evals.datasets.registry import DATASETS, DatasetInfo, load_dataset
from claimflow.evals.datasets.scifact import ScifactDoc, load_scifact, load_scifact_corpus, parse_abstract

__all__ = [
    "CLAIMBUSTER_SPLITS",
    "DATASETS",
    "DEFAULT_DATA_DIR",
    "ENV_VAR",
    "DataFormatError",
    "DataNotFoundError",
    "DatasetInfo",
    "Example",
    "ScifactDoc",
    "load_checkthat2024",
    "load_claimbuster",
    "load_climate_fever",
    "load_covidfact",
    "load_dataset",
    "load_healthver",
    "load_jsonl",
    "load_scifact",
    "load_scifact_corpus",
    "parse_abstract",
    "resolve_data_dir",
    "write_jsonl",
]

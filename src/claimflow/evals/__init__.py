"""Evaluation: dataset loaders (one common schema), label maps, metrics and significance tests."""

from __future__ import annotations

from claimflow.evals.datasets import (
    DATASETS,
    DataFormatError,
    DataNotFoundError,
    Example,
    load_dataset,
    load_jsonl,
    resolve_data_dir,
    write_jsonl,
)
from claimflow.evals.labels import (
    CHECK_WORTHINESS_LABELS,
    STANCE_LABELS,
    VERACITY_LABELS,
    LabelMap,
    UnknownLabelError,
    label_map,
    map_label,
)
from claimflow.evals.metrics import (
    calibration_metrics,
    check_worthiness_metrics,
    classification_metrics,
    expected_calibration_error,
)
from claimflow.evals.stats import holm_correction, mcnemar_test, paired_bootstrap, permutation_test

__all__ = [
    "CHECK_WORTHINESS_LABELS",
    "DATASETS",
    "STANCE_LABELS",
    "VERACITY_LABELS",
    "DataFormatError",
    "DataNotFoundError",
    "Example",
    "LabelMap",
    "UnknownLabelError",
    "calibration_metrics",
    "check_worthiness_metrics",
    "classification_metrics",
    "expected_calibration_error",
    "holm_correction",
    "label_map",
    "load_dataset",
    "load_jsonl",
    "map_label",
    "mcnemar_test",
    "paired_bootstrap",
    "permutation_test",
    "resolve_data_dir",
    "write_jsonl",
]

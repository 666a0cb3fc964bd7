"""Evaluation: dataset loaders (one common schema), label maps, metrics and significance tests,
resumable A/B runs over prompt / model variants (:func:`run_ab`, stored in a :class:`RunStore`,
model calls cached by :class:`CachingBackend`) and their reports (:func:`build_report`,
:func:`to_markdown`, :func:`to_html`)."""

from __future__ import annotations

from claimflow.evals.ab import ABSpec, DatasetSpec, RunSummary, run_ab
from claimflow.evals.cache import CachingBackend
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
    LABEL_MAPS,
    STANCE_LABELS,
    TASK_LABELS,
    VERACITY_LABELS,
    LabelMap,
    Task,
    UnknownLabelError,
    label_map,
    map_label,
)
from claimflow.evals.metrics import (
    MetricFn,
    accuracy,
    calibration_metrics,
    check_worthiness_metrics,
    classification_metrics,
    expected_calibration_error,
    macro_f1,
    positive_f1,
)
from claimflow.evals.report import Report, build_report, to_html, to_markdown
from claimflow.evals.stats import bootstrap_ci, holm_correction, mcnemar_test, paired_bootstrap, permutation_test
from claimflow.evals.store import PredictionRow, RunStore

__all__ = [
    "CHECK_WORTHINESS_LABELS",
    "DATASETS",
    "LABEL_MAPS",
    "STANCE_LABELS",
    "TASK_LABELS",
    "VERACITY_LABELS",
    "ABSpec",
    "CachingBackend",
    "DataFormatError",
    "DataNotFoundError",
    "DatasetSpec",
    "Example",
    "LabelMap",
    "MetricFn",
    "PredictionRow",
    "Report",
    "RunStore",
    "RunSummary",
    "Task",
    "UnknownLabelError",
    "accuracy",
    "bootstrap_ci",
    "build_report",
    "calibration_metrics",
    "check_worthiness_metrics",
    "classification_metrics",
    "expected_calibration_error",
    "holm_correction",
    "label_map",
    "load_dataset",
    "load_jsonl",
    "macro_f1",
    "map_label",
    "mcnemar_test",
    "paired_bootstrap",
    "permutation_test",
    "positive_f1",
    "resolve_data_dir",
    "run_ab",
    "to_html",
    "to_markdown",
    "write_jsonl",
]

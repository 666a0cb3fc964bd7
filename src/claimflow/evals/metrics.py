"""Evaluation metrics (scikit-learn): check-worthiness, classification and calibration.

A prediction of ``None`` (the verbalizer could not parse the model output) is always counted as
wrong: it is never the gold label, never a false positive of any class, and it is reported in
``n_unparsed``. Gold labels must be real labels: drop items a label policy excluded first.

The metric functions of the significance tests (:data:`accuracy`, :func:`macro_f1`,
:func:`positive_f1`) are :class:`BatchMetric` objects: called on two label lists they score with
scikit-learn (the reference), and :meth:`BatchMetric.batch` scores a whole stack of resamples of
integer-coded labels in one numpy pass (what :mod:`claimflow.evals.stats` uses for its resamples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from claimflow.errors import InputError
from claimflow.types import StrictModel

MetricFn = Callable[[Sequence[str], Sequence[str | None]], float]
"""A metric of (gold labels, predicted labels or None), higher is better."""

BatchFn = Callable[[np.ndarray, np.ndarray, tuple[str, ...]], np.ndarray]
"""``(gold codes, predicted codes, vocabulary) -> scores``: codes of shape ``(..., n)`` index into the
vocabulary (``UNPARSED_CODE`` for None); the result has shape ``(...)``, one score per resample."""

UNPARSED_CODE = -1
"""The integer code of an unparsed prediction (None) in :func:`encode_labels`."""

_UNPARSED = "\x00unparsed"  # stands in for None: in no label set, so never right and never a positive
_SUM_TOLERANCE = 1e-3


class CheckWorthinessMetrics(StrictModel):
    """Binary metrics of the positive class (``Yes``), plus accuracy and the confusion counts."""

    positive_label: str
    n: int
    n_unparsed: int
    f1: float
    precision: float
    recall: float
    accuracy: float
    tp: int
    fp: int
    fn: int
    tn: int


class ClassMetrics(StrictModel):
    precision: float
    recall: float
    f1: float
    support: int


class ClassificationMetrics(StrictModel):
    """Macro and per-class metrics over ``labels``; ``confusion_matrix[i][j]``: gold ``labels[i]``,
    predicted ``labels[j]``. Unparsed predictions are not in the matrix: see ``unparsed_by_gold``."""

    labels: tuple[str, ...]
    n: int
    n_unparsed: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    unparsed_by_gold: dict[str, int]


class CalibrationBin(StrictModel):
    """Items whose confidence lies in ``(lower, upper]`` (the first bin also holds 0)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


class CalibrationMetrics(StrictModel):
    """Top-label ECE over ``n_bins`` equal-width bins and the Brier score of the full distributions."""

    labels: tuple[str, ...]
    n: int
    n_unparsed: int
    n_bins: int
    ece: float
    brier: float
    bins: list[CalibrationBin]


# --- label checks --------------------------------------------------------------------------------


def _check_gold(gold: Sequence[str | None], labels: Sequence[str]) -> None:
    if not gold:
        raise InputError("no items to score")
    if len(set(labels)) != len(labels):
        raise InputError(f"duplicate labels in {list(labels)}")
    allowed = set(labels)
    for i, g in enumerate(gold):
        if g not in allowed:
            raise InputError(f"gold label {g!r} of item {i} is not in {list(labels)} (drop excluded items first)")


def _prepare(
    gold: Sequence[str | None], pred: Sequence[str | None], labels: Sequence[str]
) -> tuple[list[str], list[str], int]:
    """Gold and predictions as strings (None -> the unparsed marker), checked against ``labels``."""
    if len(gold) != len(pred):
        raise InputError(f"{len(gold)} gold labels but {len(pred)} predictions")
    _check_gold(gold, labels)
    allowed = set(labels)
    for i, p in enumerate(pred):
        if p is not None and p not in allowed:
            raise InputError(f"predicted label {p!r} of item {i} is not in {list(labels)}")
    return [str(g) for g in gold], [_UNPARSED if p is None else p for p in pred], sum(p is None for p in pred)


# --- check-worthiness ----------------------------------------------------------------------------


def check_worthiness_metrics(
    gold: Sequence[str], pred: Sequence[str | None], *, positive: str = "Yes", negative: str = "No"
) -> CheckWorthinessMetrics:
    """F1, precision and recall of the ``positive`` class (the CheckThat! measure) and accuracy."""
    g, p, n_unparsed = _prepare(gold, pred, (positive, negative))
    precision, recall, f1, _ = precision_recall_fscore_support(g, p, labels=[positive], average=None, zero_division=0.0)
    ga, pa = np.asarray(g), np.asarray(p)
    return CheckWorthinessMetrics(
        positive_label=positive,
        n=len(g),
        n_unparsed=n_unparsed,
        f1=float(f1[0]),
        precision=float(precision[0]),
        recall=float(recall[0]),
        accuracy=float(accuracy_score(g, p)),
        tp=int(np.sum((ga == positive) & (pa == positive))),
        fp=int(np.sum((ga == negative) & (pa == positive))),
        fn=int(np.sum((ga == positive) & (pa != positive))),
        tn=int(np.sum((ga == negative) & (pa == negative))),
    )


# --- classification ------------------------------------------------------------------------------


def classification_metrics(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]
) -> ClassificationMetrics:
    """Accuracy, macro P/R/F1 over ``labels`` (all of them, present in gold or not), per-class metrics
    and the confusion matrix in ``labels`` order."""
    g, p, n_unparsed = _prepare(gold, pred, labels)
    label_list = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        g, p, labels=label_list, average=None, zero_division=0.0
    )
    matrix = confusion_matrix(g, p, labels=label_list)
    return ClassificationMetrics(
        labels=tuple(label_list),
        n=len(g),
        n_unparsed=n_unparsed,
        accuracy=float(accuracy_score(g, p)),
        macro_precision=float(np.mean(precision)),
        macro_recall=float(np.mean(recall)),
        macro_f1=float(np.mean(f1)),
        per_class={
            label: ClassMetrics(
                precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]), support=int(support[i])
            )
            for i, label in enumerate(label_list)
        },
        confusion_matrix=matrix.astype(int).tolist(),
        unparsed_by_gold={
            label: sum(gi == label and pi == _UNPARSED for gi, pi in zip(g, p, strict=True)) for label in label_list
        },
    )


# --- metric functions for the significance tests --------------------------------------------------


class BatchMetric:
    """A metric function that can also score many resamples at once.

    Calling it, ``metric(gold, pred)``, gives the reference value (scikit-learn or plain Python);
    ``metric.batch(gold_codes, pred_codes, vocabulary)`` gives the same value for each row of a stack
    of integer-coded resamples (see :func:`encode_labels`), in one vectorised numpy pass.
    """

    def __init__(self, name: str, reference: MetricFn, batch: BatchFn) -> None:
        self.__name__ = name
        self._reference = reference
        self._batch = batch

    def __call__(self, gold: Sequence[str], pred: Sequence[str | None]) -> float:
        return self._reference(gold, pred)

    def batch(self, gold: np.ndarray, pred: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
        """Scores of each resample: ``gold`` and ``pred`` are codes of shape ``(..., n)`` (broadcastable)."""
        return np.asarray(self._batch(gold, pred, vocabulary), dtype=float)

    def __repr__(self) -> str:
        return f"BatchMetric({self.__name__})"


def encode_labels(*columns: Sequence[str | None]) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """One shared vocabulary (sorted labels) and each column as int64 codes into it (None -> -1)."""
    vocabulary = tuple(sorted({x for column in columns for x in column if x is not None}))
    code = {label: i for i, label in enumerate(vocabulary)}
    return vocabulary, [
        np.fromiter((UNPARSED_CODE if x is None else code[x] for x in column), dtype=np.int64, count=len(column))
        for column in columns
    ]


def _f1_by_label(gold: np.ndarray, pred: np.ndarray, vocabulary: tuple[str, ...], labels: Sequence[str]) -> np.ndarray:
    """F1 of each of ``labels`` per resample, shape ``(..., len(labels))``; 0 where it is undefined."""
    code = {label: i for i, label in enumerate(vocabulary)}
    scores = []
    for label in labels:
        k = code.get(label, UNPARSED_CODE - 1)  # a label absent from the data matches no code
        is_gold, is_pred = gold == k, pred == k
        tp = np.sum(is_gold & is_pred, axis=-1)
        denominator = np.sum(is_gold, axis=-1) + np.sum(is_pred, axis=-1)  # 2 tp + fp + fn
        scores.append(np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0))
    return np.stack(scores, axis=-1)


def _accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    if len(gold) != len(pred) or not gold:
        raise InputError(f"need equal, non-zero numbers of gold labels and predictions ({len(gold)}, {len(pred)})")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


accuracy = BatchMetric("accuracy", _accuracy, lambda gold, pred, vocabulary: np.mean(np.equal(gold, pred), axis=-1))
"""Share of items predicted right (``None`` is wrong)."""


def macro_f1(labels: Sequence[str]) -> BatchMetric:
    """A metric function: macro-F1 over the fixed ``labels`` (fixed so resamples stay comparable)."""
    label_list = list(labels)

    def reference(gold: Sequence[str], pred: Sequence[str | None]) -> float:
        p = [_UNPARSED if x is None else x for x in pred]
        return float(f1_score(list(gold), p, labels=label_list, average="macro", zero_division=0.0))

    return BatchMetric(
        "macro_f1",
        reference,
        lambda gold, pred, vocabulary: np.mean(_f1_by_label(gold, pred, vocabulary, label_list), axis=-1),
    )


def positive_f1(positive: str = "Yes") -> BatchMetric:
    """A metric function: F1 of the ``positive`` class (the CheckThat! measure)."""

    def reference(gold: Sequence[str], pred: Sequence[str | None]) -> float:
        p = [_UNPARSED if x is None else x for x in pred]
        return float(f1_score(list(gold), p, labels=[positive], average="macro", zero_division=0.0))

    return BatchMetric(
        f"f1_{positive}",
        reference,
        lambda gold, pred, vocabulary: _f1_by_label(gold, pred, vocabulary, [positive])[..., 0],
    )


# --- calibration ---------------------------------------------------------------------------------


def calibration_bins(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15) -> list[CalibrationBin]:
    """Equal-width bins ``(k/n_bins, (k+1)/n_bins]`` over [0, 1] (0 goes in the first bin)."""
    if n_bins < 1:
        raise InputError(f"n_bins must be at least 1, not {n_bins}")
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=bool)
    if conf.shape != hit.shape or conf.ndim != 1 or conf.size == 0:
        raise InputError(f"need equal, non-zero numbers of confidences and outcomes ({conf.size}, {hit.size})")
    if np.any(~np.isfinite(conf)) or np.any((conf < 0) | (conf > 1)):
        raise InputError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], conf, side="left")  # right-closed bins
    bins = []
    for k in range(n_bins):
        members = index == k
        count = int(members.sum())
        bins.append(
            CalibrationBin(
                lower=float(edges[k]),
                upper=float(edges[k + 1]),
                count=count,
                mean_confidence=float(conf[members].mean()) if count else 0.0,
                accuracy=float(hit[members].mean()) if count else 0.0,
            )
        )
    return bins


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15) -> float:
    """ECE = sum over bins of (bin size / n) * |accuracy - mean confidence| (Guo et al., 2017)."""
    bins = calibration_bins(confidences, correct, n_bins)
    n = sum(b.count for b in bins)
    return float(sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins))


def calibration_metrics(
    gold: Sequence[str],
    probabilities: Sequence[Mapping[str, float] | None],
    labels: Sequence[str],
    *,
    n_bins: int = 15,
) -> CalibrationMetrics:
    """ECE of the arg-max label's probability and the Brier score (scikit-learn) of the distributions.

    A missing or empty distribution (an unparsed output) counts as the uniform distribution with a
    wrong prediction. Ties go to the first label in ``labels`` order. The Brier score is the mean
    squared distance to the one-hot gold vector, halved for two labels (so binary Brier is the usual
    ``mean((p_positive - y)^2)``); for more labels it is the unhalved sum over classes (0 to 2).
    """
    label_list = list(labels)
    _check_gold(gold, label_list)
    if len(probabilities) != len(gold):
        raise InputError(f"{len(gold)} gold labels but {len(probabilities)} distributions")
    matrix = np.empty((len(gold), len(label_list)))
    confidences: list[float] = []
    correct: list[bool] = []
    n_unparsed = 0
    for i, dist in enumerate(probabilities):
        if not dist:
            n_unparsed += 1
            matrix[i] = 1.0 / len(label_list)
            confidences.append(1.0 / len(label_list))
            correct.append(False)
            continue
        unknown = set(dist) - set(label_list)
        if unknown:
            raise InputError(f"distribution {i} has labels {sorted(unknown)} outside {label_list}")
        row = np.array([float(dist.get(label, 0.0)) for label in label_list])
        if not np.all(np.isfinite(row)) or np.any(row < 0) or not math.isclose(row.sum(), 1.0, abs_tol=_SUM_TOLERANCE):
            raise InputError(f"distribution {i} is not a probability distribution: {dict(dist)}")
        matrix[i] = row
        best = int(np.argmax(row))  # first maximum wins ties
        confidences.append(min(float(row[best]), 1.0))
        correct.append(label_list[best] == gold[i])
    order = sorted(range(len(label_list)), key=lambda k: label_list[k])  # sklearn wants sorted columns
    brier = brier_score_loss(list(gold), matrix[:, order], labels=[label_list[k] for k in order])
    bins = calibration_bins(confidences, correct, n_bins)
    n = len(confidences)
    return CalibrationMetrics(
        labels=tuple(label_list),
        n=n,
        n_unparsed=n_unparsed,
        n_bins=n_bins,
        ece=float(sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins)),
        brier=float(brier),
        bins=bins,
    )

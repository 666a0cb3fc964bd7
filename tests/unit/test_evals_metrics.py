"""Metrics against values computed by hand."""

from __future__ import annotations

import pytest

from claimflow.errors import InputError
from claimflow.evals.metrics import (
    accuracy,
    calibration_bins,
    calibration_metrics,
    check_worthiness_metrics,
    classification_metrics,
    expected_calibration_error,
    macro_f1,
    positive_f1,
)

approx = pytest.approx

# --- check-worthiness ----------------------------------------------------------------------------

CW_GOLD = ["Yes", "Yes", "Yes", "No", "No", "No", "No", "Yes"]
CW_PRED = ["Yes", "No", None, "Yes", "No", "No", None, "Yes"]


def test_check_worthiness_by_hand() -> None:
    m = check_worthiness_metrics(CW_GOLD, CW_PRED)
    # tp = 2 (items 0, 7), fn = 2 (1 and the unparsed 2), fp = 1 (3), tn = 2 (4, 5); item 6 is unparsed
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 2, 2)
    assert m.precision == approx(2 / 3)
    assert m.recall == approx(1 / 2)
    assert m.f1 == approx(4 / 7)
    assert m.accuracy == approx(4 / 8)
    assert m.n == 8 and m.n_unparsed == 2 and m.positive_label == "Yes"
    assert positive_f1()(CW_GOLD, CW_PRED) == approx(4 / 7)


def test_check_worthiness_other_label_names_and_no_positives() -> None:
    m = check_worthiness_metrics(["1", "0"], ["0", "0"], positive="1", negative="0")
    assert (m.f1, m.precision, m.recall, m.accuracy) == (0.0, 0.0, 0.0, 0.5)


# --- classification ------------------------------------------------------------------------------

LABELS = ["S", "R", "N"]
GOLD = ["S", "S", "S", "R", "R", "N", "N", "N"]
PRED = ["S", "R", None, "R", "S", "N", "N", "R"]


def test_classification_by_hand() -> None:
    m = classification_metrics(GOLD, PRED, LABELS)
    assert m.labels == ("S", "R", "N")
    assert m.per_class["S"].precision == approx(1 / 2) and m.per_class["S"].recall == approx(1 / 3)
    assert m.per_class["S"].f1 == approx(2 / 5) and m.per_class["S"].support == 3
    assert m.per_class["R"].precision == approx(1 / 3) and m.per_class["R"].recall == approx(1 / 2)
    assert m.per_class["R"].f1 == approx(2 / 5)
    assert m.per_class["N"].precision == approx(1.0) and m.per_class["N"].recall == approx(2 / 3)
    assert m.per_class["N"].f1 == approx(4 / 5)
    assert m.macro_precision == approx(11 / 18)
    assert m.macro_recall == approx(1 / 2)
    assert m.macro_f1 == approx(8 / 15)
    assert m.accuracy == approx(1 / 2)
    assert m.confusion_matrix == [[1, 1, 0], [1, 1, 0], [0, 1, 2]]
    assert m.unparsed_by_gold == {"S": 1, "R": 0, "N": 0}
    assert m.n == 8 and m.n_unparsed == 1
    assert macro_f1(LABELS)(GOLD, PRED) == approx(8 / 15)
    assert accuracy(GOLD, PRED) == approx(1 / 2)


def test_label_order_sets_the_confusion_matrix_order() -> None:
    m = classification_metrics(GOLD, PRED, ["N", "R", "S"])
    assert m.confusion_matrix == [[2, 1, 0], [0, 1, 1], [0, 1, 1]]


def test_absent_class_still_counts_in_the_macro_average() -> None:
    m = classification_metrics(["A", "A"], ["A", "A"], ["A", "B"])
    assert m.per_class["A"].f1 == 1.0 and m.per_class["B"].f1 == 0.0 and m.macro_f1 == 0.5


def test_all_unparsed_scores_zero() -> None:
    m = classification_metrics(["A", "B"], [None, None], ["A", "B"])
    assert m.accuracy == 0.0 and m.macro_f1 == 0.0 and m.n_unparsed == 2
    assert m.confusion_matrix == [[0, 0], [0, 0]]


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        (["A"], ["A", "B"], "1 gold labels but 2"),
        ([], [], "no items"),
        ([None], ["A"], "drop excluded"),
        (["C"], ["A"], "gold label 'C'"),
        (["A"], ["C"], "predicted label 'C'"),
    ],
)
def test_bad_inputs_raise(gold: list[str], pred: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        classification_metrics(gold, pred, ["A", "B"])


# --- calibration ---------------------------------------------------------------------------------


def test_ece_by_hand() -> None:
    confidences = [0.9, 0.8, 0.3, 0.6, 0.55]
    correct = [True, False, False, True, True]
    # (0, .5]: {.3 wrong}: |0 - .3| * 1/5; (.5, 1]: acc 3/4, mean conf 2.85/4: |.75 - .7125| * 4/5
    assert expected_calibration_error(confidences, correct, n_bins=2) == approx(0.06 + 0.03)
    assert expected_calibration_error([1.0, 1.0], [True, True], n_bins=10) == approx(0.0)
    assert expected_calibration_error([0.7, 0.7], [True, False], n_bins=1) == approx(0.2)


def test_bins_are_right_closed_and_hold_zero() -> None:
    bins = calibration_bins([0.0, 0.5, 0.5000001, 1.0, 0.3, 0.2], [True] * 6, n_bins=2)
    assert [b.count for b in bins] == [4, 2]
    assert (bins[0].lower, bins[0].upper, bins[1].upper) == (0.0, 0.5, 1.0)
    ten = calibration_bins([0.3, 0.1, 0.7], [True, True, True], n_bins=10)
    assert [b.count for b in ten] == [1, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert ten[5].count == 0 and ten[5].mean_confidence == 0.0


def test_calibration_multiclass_by_hand() -> None:
    gold = ["A", "B", "C", "A"]
    probabilities = [
        {"A": 0.7, "B": 0.2, "C": 0.1},  # right, confidence .7
        {"A": 0.5, "B": 0.5},  # tie -> A (first label): wrong, confidence .5
        None,  # unparsed -> uniform, wrong
        {"A": 0.2, "B": 0.3, "C": 0.5},  # C: wrong, confidence .5
    ]
    m = calibration_metrics(gold, probabilities, ["A", "B", "C"], n_bins=2)
    # Brier: sum over classes of squared error, averaged: .14, .5, 2/3, .98
    assert m.brier == approx((0.14 + 0.5 + 2 / 3 + 0.98) / 4)
    # bin (0, .5]: three wrong items, mean confidence 4/9; bin (.5, 1]: one right item at .7
    assert m.ece == approx(3 / 4 * 4 / 9 + 1 / 4 * 0.3)
    assert m.n == 4 and m.n_unparsed == 1 and m.n_bins == 2
    assert [b.count for b in m.bins] == [3, 1]


def test_binary_brier_is_the_classic_one_whatever_the_label_order() -> None:
    m = calibration_metrics(["Yes", "No"], [{"Yes": 0.8, "No": 0.2}, {"Yes": 0.4, "No": 0.6}], ["Yes", "No"])
    assert m.brier == approx((0.2**2 + 0.4**2) / 2)


def test_calibration_rejects_bad_distributions() -> None:
    with pytest.raises(InputError, match="not a probability distribution"):
        calibration_metrics(["A"], [{"A": 0.7, "B": 0.7}], ["A", "B"])
    with pytest.raises(InputError, match="outside"):
        calibration_metrics(["A"], [{"A": 0.5, "Z": 0.5}], ["A", "B"])
    with pytest.raises(InputError, match="n_bins"):
        calibration_metrics(["A"], [{"A": 1.0}], ["A", "B"], n_bins=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [True])

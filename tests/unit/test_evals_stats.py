"""Significance tests against hand-computed values and brute-force references."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest

from claimflow.errors import InputError
from claimflow.evals.metrics import BatchMetric, MetricFn, accuracy, encode_labels, macro_f1, positive_f1
from claimflow.evals.stats import (
    bootstrap_ci,
    holm_correction,
    mcnemar_from_counts,
    mcnemar_test,
    paired_bootstrap,
    permutation_test,
)

approx = pytest.approx


def systems(right_a: list[bool], right_b: list[bool]) -> tuple[list[str], list[str | None], list[str | None]]:
    """Gold all "Y"; each system says "Y" where it is right, "N" (or None every third miss) where wrong."""
    gold = ["Y"] * len(right_a)
    a: list[str | None] = ["Y" if r else ("N" if i % 3 else None) for i, r in enumerate(right_a)]
    b: list[str | None] = ["Y" if r else "N" for r in right_b]
    return gold, a, b


# --- paired bootstrap ----------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_true_difference_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    n = 400
    right_a = (rng.random(n) < 0.8).tolist()
    right_b = (rng.random(n) < 0.6).tolist()
    gold, a, b = systems(right_a, right_b)
    result = paired_bootstrap(gold, a, b, accuracy, n_resamples=500, seed=3)
    assert result.ci_low < 0.2 < result.ci_high  # population difference 0.8 - 0.6
    assert result.ci_low < result.difference < result.ci_high
    assert result.difference == approx(accuracy(gold, a) - accuracy(gold, b))
    assert (result.n, result.n_resamples, result.seed, result.metric) == (n, 500, 3, "accuracy")
    assert paired_bootstrap(gold, a, b, accuracy, n_resamples=500, seed=3) == result
    assert paired_bootstrap(gold, a, b, accuracy, n_resamples=500, seed=4) != result


def test_bootstrap_is_paired() -> None:
    # B equals A except 10 items A gets right and B wrong: every paired resample has difference >= 0,
    # while an unpaired bootstrap of two 75%-accurate systems on 400 items would straddle 0 widely.
    n = 400
    right_a = [i % 4 != 0 for i in range(n)]
    right_b = [r and i not in range(1, 40, 4) for i, r in enumerate(right_a)]
    gold, a, b = systems(right_a, right_b)
    result = paired_bootstrap(gold, a, b, accuracy, n_resamples=300, seed=0)
    assert result.difference == approx(10 / n)
    assert result.ci_low >= 0.0 and result.ci_high <= 0.06
    same = paired_bootstrap(gold, a, a, accuracy, n_resamples=200, seed=0)
    assert (same.difference, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)


def test_bootstrap_any_metric_and_method() -> None:
    gold = ["S", "R", "N"] * 20
    a: list[str | None] = list(gold)
    a[0], a[1] = "R", None
    b: list[str | None] = ["S"] * 60
    f1 = macro_f1(["S", "R", "N"])
    for method in ("percentile", "BCa"):
        result = paired_bootstrap(gold, a, b, f1, n_resamples=200, seed=1, method=method)
        assert result.metric == "macro_f1" and result.method == method
        assert result.difference == approx(f1(gold, a) - f1(gold, b))
        assert 0.0 < result.ci_low < result.difference < result.ci_high


def test_bootstrap_needs_aligned_inputs() -> None:
    with pytest.raises(InputError):
        paired_bootstrap(["Y", "Y"], ["Y"], ["Y", "Y"], accuracy)


# --- McNemar -------------------------------------------------------------------------------------


def test_mcnemar_exact_by_hand() -> None:
    result = mcnemar_from_counts(1, 6)
    # two-sided binomial: 2 * P(X <= 1 | n=7, p=.5) = 2 * (1 + 7) / 128
    assert result.exact and result.p_value == approx(16 / 128)
    assert mcnemar_from_counts(3, 3).p_value == approx(1.0)
    assert mcnemar_from_counts(0, 0).p_value == 1.0


def test_mcnemar_chi_squared_by_hand() -> None:
    result = mcnemar_from_counts(30, 10)
    assert not result.exact
    assert result.statistic == approx((20 - 1) ** 2 / 40)
    assert result.p_value == approx(math.erfc(math.sqrt(9.025 / 2)))  # chi2(1) survival function
    assert mcnemar_from_counts(12, 12).exact is True and mcnemar_from_counts(13, 12).exact is False
    assert mcnemar_from_counts(30, 10, exact=True).exact is True


def test_mcnemar_from_predictions_counts_none_as_wrong() -> None:
    gold = ["Y", "Y", "N", "N", "Y", "N", "Y", "Y"]
    a: list[str | None] = ["Y", "Y", "N", None, "N", "N", "Y", "Y"]
    b: list[str | None] = ["N", None, "N", "N", "N", "Y", "N", "N"]
    result = mcnemar_test(gold, a, b)
    # only A right: items 0, 1, 5, 6, 7; only B right: item 3 (A is unparsed there)
    assert (result.a_only, result.b_only, result.n) == (5, 1, 8)
    assert result.p_value == approx(2 * (1 + 6) / 64)


# --- permutation ---------------------------------------------------------------------------------


def brute_force_p(gold: list[str], a: list[str | None], b: list[str | None], metric) -> float:  # type: ignore[no-untyped-def]
    observed = abs(metric(gold, a) - metric(gold, b))
    hits = 0
    patterns = list(itertools.product([False, True], repeat=len(gold)))
    for swap in patterns:
        x = [bi if s else ai for ai, bi, s in zip(a, b, swap, strict=True)]
        y = [ai if s else bi for ai, bi, s in zip(a, b, swap, strict=True)]
        hits += abs(metric(gold, x) - metric(gold, y)) >= observed - 1e-12
    return hits / len(patterns)


def test_permutation_exact_matches_brute_force() -> None:
    gold = ["Y"] * 6
    a: list[str | None] = ["Y"] * 6
    b: list[str | None] = ["N", "N", None, "N", "Y", "Y"]
    result = permutation_test(gold, a, b, accuracy, n_resamples=1000, seed=0)
    assert result.exact
    assert result.p_value == approx(2 / 16)  # all four discordant items must agree in sign
    assert result.p_value == approx(brute_force_p(gold, a, b, accuracy))
    assert result.difference == approx(4 / 6)

    gold2 = ["S", "R", "N", "S", "R", "N", "S"]
    a2: list[str | None] = ["S", "R", "N", "R", "R", "S", "S"]
    b2: list[str | None] = ["S", "S", "S", "S", None, "N", "R"]
    f1 = macro_f1(["S", "R", "N"])
    exact = permutation_test(gold2, a2, b2, f1, n_resamples=500, seed=0)
    assert exact.exact and exact.p_value == approx(brute_force_p(gold2, a2, b2, f1))


def test_permutation_randomized_is_seeded() -> None:
    rng = np.random.default_rng(1)
    right_a = (rng.random(120) < 0.85).tolist()
    right_b = (rng.random(120) < 0.5).tolist()
    gold, a, b = systems(right_a, right_b)
    result = permutation_test(gold, a, b, accuracy, n_resamples=999, seed=5)
    assert not result.exact and (result.n, result.n_resamples, result.seed) == (120, 999, 5)
    assert result.p_value == approx(2 / 1000)  # no random swap reaches it: 2 * (0 + 1) / (999 + 1)
    assert permutation_test(gold, a, b, accuracy, n_resamples=999, seed=5) == result
    equal = permutation_test(gold, a, a, accuracy, n_resamples=99, seed=0)
    assert equal.p_value == 1.0


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_by_hand() -> None:
    result = holm_correction([0.01, 0.04, 0.03, 0.005])
    # sorted .005, .01, .03, .04 -> 4*.005, 3*.01, 2*.03, max(that, 1*.04)
    assert result.adjusted == approx((0.03, 0.06, 0.06, 0.02))
    assert result.reject == (True, False, False, True)
    assert result.names == ("0", "1", "2", "3")


def test_holm_with_names_caps_at_one() -> None:
    result = holm_correction({"cw": 0.6, "stance": 0.001, "veracity": 0.5}, alpha=0.01)
    assert result.names == ("cw", "stance", "veracity")
    assert result.adjusted == approx((1.0, 0.003, 1.0))
    assert result.reject == (False, True, False)
    with pytest.raises(InputError):
        holm_correction([])
    with pytest.raises(InputError):
        holm_correction([1.2])


# --- vectorised resamples against the per-resample (slow) path -------------------------------------


def _random_systems(seed: int, n: int = 120) -> tuple[list[str], list[str | None], list[str | None]]:
    rng = np.random.default_rng(seed)
    labels = np.array(["S", "R", "N", "X"])  # "X": a predicted label outside the metric's labels
    gold = [str(x) for x in rng.choice(labels[:3], n)]
    a: list[str | None] = [g if rng.random() < 0.7 else str(rng.choice(labels)) for g in gold]
    b: list[str | None] = [g if rng.random() < 0.5 else str(rng.choice(labels)) for g in gold]
    for i in range(0, n, 11):
        a[i] = None
    return gold, a, b


def _slow(metric: BatchMetric) -> MetricFn:
    """The same metric as a plain function: the stats functions score it one resample at a time."""

    def plain(gold: Sequence[str], pred: Sequence[str | None]) -> float:
        return metric(gold, pred)

    plain.__name__ = metric.__name__
    return plain


METRICS = [accuracy, macro_f1(["S", "R", "N"]), macro_f1(["S", "R", "N", "Z"]), positive_f1("S")]


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.__name__)
def test_batch_metric_matches_the_reference_on_every_resample(metric: BatchMetric) -> None:
    gold, a, _ = _random_systems(1)
    vocabulary, (gc, ac) = encode_labels(gold, a)
    index = np.random.default_rng(2).integers(0, len(gold), (50, len(gold)))
    batch = metric.batch(gc[index], ac[index], vocabulary)
    slow = [metric([gold[i] for i in row], [a[i] for i in row]) for row in index]
    assert batch.shape == (50,)
    assert batch.tolist() == approx(slow, abs=1e-12)


@pytest.mark.parametrize(
    ("metric", "method"),
    [*((m, "percentile") for m in METRICS), (accuracy, "BCa"), (METRICS[2], "BCa")],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_vectorised_paired_bootstrap_matches_the_slow_path(metric: BatchMetric, method: str) -> None:
    gold, a, b = _random_systems(3, n=60)  # the slow path is one scikit-learn call per resample: kept small
    fast = paired_bootstrap(gold, a, b, metric, n_resamples=120, seed=5, method=method)  # type: ignore[arg-type]
    slow = paired_bootstrap(gold, a, b, _slow(metric), n_resamples=120, seed=5, method=method)  # type: ignore[arg-type]
    # scipy draws the same resample indices on both paths, so the numbers agree to rounding
    assert fast.model_dump() == approx(slow.model_dump(), abs=1e-9)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.__name__)
def test_vectorised_bootstrap_ci_and_permutation_match_the_slow_path(metric: BatchMetric) -> None:
    gold, a, b = _random_systems(4, n=60)
    assert bootstrap_ci(gold, a, metric, n_resamples=120, seed=2) == approx(
        bootstrap_ci(gold, a, _slow(metric), n_resamples=120, seed=2), abs=1e-9
    )
    fast = permutation_test(gold, a, b, metric, n_resamples=120, seed=6)
    slow = permutation_test(gold, a, b, _slow(metric), n_resamples=120, seed=6)
    assert fast.model_dump() == approx(slow.model_dump(), abs=1e-9)
    small = _random_systems(5, n=6)  # exact: every swap pattern
    assert permutation_test(*small, metric, n_resamples=100).p_value == approx(
        permutation_test(*small, _slow(metric), n_resamples=100).p_value, abs=1e-12
    )

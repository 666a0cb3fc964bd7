"""Significance of the difference between two systems scored on the same items.

- :func:`paired_bootstrap`: confidence interval of ``metric(A) - metric(B)`` for any metric, resampling
  item indices once per resample and scoring both systems on them (``scipy.stats.bootstrap``).
- :func:`mcnemar_test`: McNemar's test on accuracy (exact binomial below 25 discordant items).
- :func:`permutation_test`: approximate randomization: swap the two systems' predictions item by item
  (``scipy.stats.permutation_test``, paired ``samples``; exact when every swap pattern fits).
- :func:`holm_correction`: Holm's step-down adjustment over several p-values.

Predictions of ``None`` (unparsed outputs) count as wrong, as in :mod:`claimflow.evals.metrics`.

A :class:`~claimflow.evals.metrics.BatchMetric` (every built-in metric) is scored over all resamples
at once: scipy draws the same resample indices either way, and the statistic then reads the whole
resample-index matrix in one numpy pass instead of one scikit-learn call per resample. Any other
metric function takes the per-resample path; both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from scipy import stats as sps

from claimflow.errors import InputError
from claimflow.evals.metrics import BatchMetric, MetricFn, encode_labels
from claimflow.types import StrictModel

BootstrapMethod = Literal["percentile", "basic", "BCa"]
EXACT_MCNEMAR_BELOW = 25
"""Discordant counts below this use the exact binomial McNemar test (the usual rule of thumb)."""


class BootstrapResult(StrictModel):
    """``difference = metric_a - metric_b`` on all items and its paired-bootstrap confidence interval."""

    metric: str
    metric_a: float
    metric_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence_level: float
    standard_error: float
    method: str
    n: int
    n_resamples: int
    seed: int


class McNemarResult(StrictModel):
    """``a_only``: items only system A got right; ``b_only``: only B. Exact: binomial p-value."""

    n: int
    a_only: int
    b_only: int
    statistic: float
    p_value: float
    exact: bool


class PermutationResult(StrictModel):
    """Two-sided p-value of ``difference = metric_a - metric_b`` under random swaps of A and B per item."""

    metric: str
    metric_a: float
    metric_b: float
    difference: float
    p_value: float
    n: int
    n_resamples: int
    seed: int
    exact: bool


class HolmResult(StrictModel):
    """Holm-adjusted p-values, in input order, and which hypotheses are rejected at ``alpha``."""

    names: tuple[str, ...]
    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    reject: tuple[bool, ...]
    alpha: float


def _check(gold: Sequence[str], pred_a: Sequence[str | None], pred_b: Sequence[str | None]) -> int:
    if not (len(gold) == len(pred_a) == len(pred_b)):
        raise InputError(f"gold and both systems need one label per item ({len(gold)}, {len(pred_a)}, {len(pred_b)})")
    if len(gold) < 2:
        raise InputError("need at least two items")
    return len(gold)


def _name(metric: MetricFn) -> str:
    return str(getattr(metric, "__name__", repr(metric)))


def paired_bootstrap(
    gold: Sequence[str],
    pred_a: Sequence[str | None],
    pred_b: Sequence[str | None],
    metric: MetricFn,
    *,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    method: BootstrapMethod = "percentile",
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap CI of ``metric(gold, pred_a) - metric(gold, pred_b)``.

    Each resample draws ``n`` item indices with replacement and scores *both* systems on the same
    indices, so the pairing of the two systems' predictions is kept. Seeded: same seed, same CI.
    """
    n = _check(gold, pred_a, pred_b)
    metric_a, metric_b = metric(list(gold), list(pred_a)), metric(list(gold), list(pred_b))
    if isinstance(metric, BatchMetric):
        vocabulary, (gc, ac, bc) = encode_labels(gold, pred_a, pred_b)

        def difference(index: np.ndarray, axis: int = -1) -> np.ndarray | float:
            i = index.astype(np.int64)
            return metric.batch(gc[i], ac[i], vocabulary) - metric.batch(gc[i], bc[i], vocabulary)

    else:
        g, a, b = np.asarray(gold, dtype=object), np.asarray(pred_a, dtype=object), np.asarray(pred_b, dtype=object)

        def difference(index: np.ndarray, axis: int = -1) -> np.ndarray | float:
            i = index.astype(int)
            return metric(list(g[i]), list(a[i])) - metric(list(g[i]), list(b[i]))

    result = sps.bootstrap(
        (np.arange(n),),
        difference,
        n_resamples=n_resamples,
        vectorized=isinstance(metric, BatchMetric),
        paired=True,
        confidence_level=confidence_level,
        method=method,
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    spread = np.asarray(result.bootstrap_distribution)
    if np.isnan(low) and np.ptp(spread) == 0:  # every resample gave the same difference (BCa is undefined)
        low = high = float(spread[0])
    return BootstrapResult(
        metric=_name(metric),
        metric_a=metric_a,
        metric_b=metric_b,
        difference=metric_a - metric_b,
        ci_low=low,
        ci_high=high,
        confidence_level=confidence_level,
        standard_error=float(result.standard_error),
        method=method,
        n=n,
        n_resamples=n_resamples,
        seed=seed,
    )


def mcnemar_from_counts(a_only: int, b_only: int, *, n: int | None = None, exact: bool | None = None) -> McNemarResult:
    """McNemar's test from the discordant counts.

    ``exact`` (default: when ``a_only + b_only < 25``) uses the two-sided binomial test of
    ``a_only`` successes in ``a_only + b_only`` trials at p = 0.5; otherwise the chi-squared
    statistic with continuity correction, ``(|a_only - b_only| - 1)^2 / (a_only + b_only)``, 1 d.f.
    """
    if a_only < 0 or b_only < 0:
        raise InputError("discordant counts cannot be negative")
    discordant = a_only + b_only
    use_exact = discordant < EXACT_MCNEMAR_BELOW if exact is None else exact
    if discordant == 0:
        statistic, p_value = 0.0, 1.0
    elif use_exact:
        statistic = float(min(a_only, b_only))
        p_value = float(sps.binomtest(a_only, discordant, 0.5, alternative="two-sided").pvalue)
    else:
        statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
        p_value = float(sps.chi2.sf(statistic, df=1))
    return McNemarResult(
        n=discordant if n is None else n,
        a_only=a_only,
        b_only=b_only,
        statistic=float(statistic),
        p_value=min(p_value, 1.0),
        exact=use_exact,
    )


def mcnemar_test(
    gold: Sequence[str], pred_a: Sequence[str | None], pred_b: Sequence[str | None], *, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test of equal accuracy of two systems on the same items (``None`` is wrong)."""
    n = _check(gold, pred_a, pred_b)
    right_a = [p == g for g, p in zip(gold, pred_a, strict=True)]
    right_b = [p == g for g, p in zip(gold, pred_b, strict=True)]
    a_only = sum(ra and not rb for ra, rb in zip(right_a, right_b, strict=True))
    b_only = sum(rb and not ra for ra, rb in zip(right_a, right_b, strict=True))
    return mcnemar_from_counts(a_only, b_only, n=n, exact=exact)


def permutation_test(
    gold: Sequence[str],
    pred_a: Sequence[str | None],
    pred_b: Sequence[str | None],
    metric: MetricFn,
    *,
    n_resamples: int = 9999,
    seed: int = 0,
) -> PermutationResult:
    """Approximate randomization test of ``metric(A) - metric(B)``, two-sided.

    Under the null the two systems are exchangeable on each item: each resample swaps A's and B's
    prediction on a random subset of items. The test is exact (all ``2^n`` swap patterns) when
    ``2^n <= n_resamples``. The two-sided p-value is scipy's: twice the smaller one-sided p-value,
    capped at 1; a randomized one-sided p-value counts the observed arrangement, ``(k + 1) / (R + 1)``,
    so the smallest attainable two-sided value is ``2 / (n_resamples + 1)``.
    """
    n = _check(gold, pred_a, pred_b)
    vocabulary, (gc, x, y) = encode_labels(gold, pred_a, pred_b)  # None -> -1
    if isinstance(metric, BatchMetric):

        def difference(xs: np.ndarray, ys: np.ndarray, axis: int = -1) -> np.ndarray | float:
            return metric.batch(gc, xs, vocabulary) - metric.batch(gc, ys, vocabulary)

    else:
        decode = np.array([*vocabulary, None], dtype=object)  # index -1 -> None
        g = list(gold)

        def difference(xs: np.ndarray, ys: np.ndarray, axis: int = -1) -> np.ndarray | float:
            return metric(g, list(decode[xs])) - metric(g, list(decode[ys]))

    result = sps.permutation_test(
        (x, y),
        difference,
        permutation_type="samples",
        vectorized=isinstance(metric, BatchMetric),
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    metric_a, metric_b = metric(list(gold), list(pred_a)), metric(list(gold), list(pred_b))
    return PermutationResult(
        metric=_name(metric),
        metric_a=metric_a,
        metric_b=metric_b,
        difference=metric_a - metric_b,
        p_value=float(result.pvalue),
        n=n,
        n_resamples=n_resamples,
        seed=seed,
        exact=2**n <= n_resamples,
    )


def holm_correction(p_values: Sequence[float] | Mapping[str, float], *, alpha: float = 0.05) -> HolmResult:
    """Holm's step-down adjustment: with p sorted ascending, ``adj_(i) = max_{j<=i} min(1, (m-j+1) p_(j))``.

    Accepts a list or a name -> p-value mapping (names default to the positions).
    """
    if isinstance(p_values, Mapping):
        names, values = tuple(str(k) for k in p_values), [float(v) for v in p_values.values()]
    else:
        values = [float(v) for v in p_values]
        names = tuple(str(i) for i in range(len(values)))
    if not values:
        raise InputError("no p-values to correct")
    if any(not 0.0 <= p <= 1.0 for p in values):
        raise InputError(f"p-values must lie in [0, 1]: {values}")
    m = len(values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: values[i])):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return HolmResult(
        names=names,
        p_values=tuple(values),
        adjusted=tuple(adjusted),
        reject=tuple(p <= alpha for p in adjusted),
        alpha=alpha,
    )


def bootstrap_ci(
    gold: Sequence[str],
    pred: Sequence[str | None],
    metric: MetricFn,
    *,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``metric(gold, pred)`` for one system (items resampled with replacement);
    NaN for fewer than two items."""
    if len(gold) != len(pred) or not gold:
        raise InputError(f"need equal, non-zero numbers of gold labels and predictions ({len(gold)}, {len(pred)})")
    if len(gold) < 2:
        return float("nan"), float("nan")
    if isinstance(metric, BatchMetric):
        vocabulary, (gc, pc) = encode_labels(gold, pred)

        def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray | float:
            i = index.astype(np.int64)
            return metric.batch(gc[i], pc[i], vocabulary)

    else:
        g, p = np.asarray(gold, dtype=object), np.asarray(pred, dtype=object)

        def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray | float:
            i = index.astype(int)
            return metric(list(g[i]), list(p[i]))

    result = sps.bootstrap(
        (np.arange(len(gold)),),
        statistic,
        n_resamples=n_resamples,
        vectorized=isinstance(metric, BatchMetric),
        confidence_level=confidence_level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)

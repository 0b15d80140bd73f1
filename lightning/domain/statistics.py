"""Pure statistics for comparing two model versions (standard library only).

What ``services/comparison.py`` (``compare-versions``) uses to put a 95%
confidence interval on every figure and a p-value on every difference:

- proportions (tool accuracy, completeness, error rate): the Wilson score
  interval per side, Newcombe's hybrid score interval for the difference, and
  the pooled two-proportion z-test;
- means and percentiles (reward, latency): the percentile bootstrap, with a
  seeded ``random.Random`` so the same data always gives the same numbers, and
  a two-sided bootstrap test whose p-value agrees with the difference interval
  (p < 1 - confidence exactly when the interval excludes 0);
- Holm's step-down adjustment when several tests decide one verdict.

Every function is deterministic given its inputs (and the ``rng`` it is handed)
and raises ``ValueError`` for inputs that have no answer (an empty sample).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from statistics import NormalDist

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000

Statistic = Callable[[Sequence[float]], float]
"""A figure computed from one sample (``mean``, ``lambda xs: percentile(xs, 95)``)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval ``[low, high]``."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-sided test: the statistic (z for proportions, the observed difference for bootstrap) and p."""

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    p_value: float


@dataclass(frozen=True, slots=True)
class BootstrapComparison:
    """Two samples compared by one statistic: each side's figure and interval, the difference, the test.

    ``difference`` is ``statistic(b) - statistic(a)`` (candidate minus baseline).
    """

    estimate_a: float
    interval_a: Interval
    estimate_b: float
    interval_b: Interval
    difference: float
    difference_interval: Interval
    p_value: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check_counts(successes: int, n: int) -> None:
    if n <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and {n}, got {successes}")


def wilson_interval(successes: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson score interval for ``successes / n``.

    Chosen over the textbook Wald interval because it stays inside [0, 1] and
    keeps its coverage near 0% and 100% (error rates, accuracies close to 1).
    """
    _check_counts(successes, n)
    z = _z(confidence)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 and n the bounds are exactly 0 and 1; rounding must not push them past.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return Interval(low, high)


def newcombe_difference_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Interval for ``p_b - p_a`` from the two Wilson intervals (Newcombe 1998, method 10)."""
    a = wilson_interval(successes_a, n_a, confidence=confidence)
    b = wilson_interval(successes_b, n_b, confidence=confidence)
    p_a = successes_a / n_a
    p_b = successes_b / n_b
    difference = p_b - p_a
    low = difference - math.sqrt((p_b - b.low) ** 2 + (a.high - p_a) ** 2)
    high = difference + math.sqrt((b.high - p_b) ** 2 + (p_a - a.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def two_proportion_z_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Pooled two-sided z-test of ``p_a == p_b``; the statistic is positive when ``p_b > p_a``.

    When both sides are all-successes or all-failures there is no variance and
    no evidence of a difference: z = 0, p = 1.
    """
    _check_counts(successes_a, n_a)
    _check_counts(successes_b, n_b)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0.0:
        return TestResult(statistic=0.0, p_value=1.0)
    z = (successes_b / n_b - successes_a / n_a) / math.sqrt(variance)
    p_value = 2.0 * NormalDist().cdf(-abs(z))
    return TestResult(statistic=z, p_value=min(1.0, p_value))


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("the mean of an empty sample is undefined")
    return math.fsum(values) / len(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between order statistics.

    The same definition as numpy's default (Hyndman & Fan type 7), so figures
    match what a reader gets from a spreadsheet or numpy.
    """
    if not values:
        raise ValueError("the percentile of an empty sample is undefined")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def percentile_of(q: float) -> Statistic:
    """``percentile(·, q)`` as a one-argument statistic for the bootstrap."""

    def statistic(values: Sequence[float]) -> float:
        return percentile(values, q)

    return statistic


def _quantile_of_sorted(ordered: Sequence[float], fraction: float) -> float:
    position = (len(ordered) - 1) * fraction
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _replicates(values: Sequence[float], statistic: Statistic, resamples: int, rng: Random) -> list[float]:
    n = len(values)
    return [statistic(rng.choices(values, k=n)) for _ in range(resamples)]


def _percentile_interval(replicates: Sequence[float], confidence: float) -> Interval:
    ordered = sorted(replicates)
    tail = (1.0 - confidence) / 2.0
    return Interval(_quantile_of_sorted(ordered, tail), _quantile_of_sorted(ordered, 1.0 - tail))


def _check_bootstrap(values: Sequence[float], resamples: int, confidence: float) -> None:
    if not values:
        raise ValueError("the bootstrap needs a non-empty sample")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    _z(confidence)


def bootstrap_interval(
    values: Sequence[float],
    statistic: Statistic,
    *,
    rng: Random,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic`` over ``values``."""
    _check_bootstrap(values, resamples, confidence)
    return _percentile_interval(_replicates(values, statistic, resamples, rng), confidence)


def bootstrap_compare(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Statistic,
    *,
    rng: Random,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapComparison:
    """Bootstrap both samples independently and compare ``statistic(b) - statistic(a)``.

    The same replicates give each side's interval and the difference's, so the
    three agree. The two-sided p-value is twice the smaller share of replicate
    differences on either side of 0, with the usual +1 correction so it is
    never exactly 0 — a bootstrap with B resamples cannot claim p < 2/(B+1).
    """
    return bootstrap_compare_many(a, b, [statistic], rng=rng, resamples=resamples, confidence=confidence)[0]


def bootstrap_compare_many(
    a: Sequence[float],
    b: Sequence[float],
    statistics: Sequence[Statistic],
    *,
    rng: Random,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[BootstrapComparison]:
    """``bootstrap_compare`` for several statistics of the same samples (p50 and p95 latency).

    Drawing the resamples is most of the cost, so every statistic is computed
    on the same resamples instead of drawing them once per statistic.
    """
    _check_bootstrap(a, resamples, confidence)
    _check_bootstrap(b, resamples, confidence)
    if not statistics:
        raise ValueError("name at least one statistic to compare")
    count = len(statistics)
    replicates_a: list[list[float]] = [[] for _ in range(count)]
    replicates_b: list[list[float]] = [[] for _ in range(count)]
    for _ in range(resamples):
        resample_a = rng.choices(a, k=len(a))
        resample_b = rng.choices(b, k=len(b))
        for index, statistic in enumerate(statistics):
            replicates_a[index].append(statistic(resample_a))
            replicates_b[index].append(statistic(resample_b))
    results: list[BootstrapComparison] = []
    for index, statistic in enumerate(statistics):
        differences = [rb - ra for ra, rb in zip(replicates_a[index], replicates_b[index], strict=True)]
        at_or_below = sum(1 for d in differences if d <= 0.0)
        at_or_above = sum(1 for d in differences if d >= 0.0)
        p_value = 2.0 * min(at_or_below + 1, at_or_above + 1) / (resamples + 1)
        estimate_a, estimate_b = statistic(a), statistic(b)
        results.append(
            BootstrapComparison(
                estimate_a=estimate_a,
                interval_a=_percentile_interval(replicates_a[index], confidence),
                estimate_b=estimate_b,
                interval_b=_percentile_interval(replicates_b[index], confidence),
                difference=estimate_b - estimate_a,
                difference_interval=_percentile_interval(differences, confidence),
                p_value=min(1.0, p_value),
            )
        )
    return results


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    When several tests decide one verdict, each raw p-value below 0.05 is not
    enough: with three tests the chance that one of them is "significant" by
    luck alone is about 14%. Holm keeps that family-wise error at the chosen
    level and is never less powerful than Bonferroni.
    """
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be between 0 and 1, got {p}")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float:
    """Cohen's kappa of two raters' yes/no decisions: agreement beyond what chance gives (1 perfect,
    0 chance level, negative worse than chance). 1.0 when both always say the same single answer."""
    if not pairs:
        raise ValueError("kappa of no pairs is undefined")
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    yes_a = sum(1 for a, _ in pairs if a) / n
    yes_b = sum(1 for _, b in pairs if b) / n
    expected = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        average = (start + end) / 2 + 1  # ties share the average of their ranks
        for position in range(start, end + 1):
            ranks[order[position]] = average
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties averaged); None when either side is constant."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("rank correlation needs two samples of the same length, at least 2")
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return None
    return cov / math.sqrt(vx * vy)

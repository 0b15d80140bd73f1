"""The statistics module against independent oracles: scipy/numpy (test-only) and published values."""

from __future__ import annotations

from random import Random

import numpy as np
import pytest
from scipy import stats

from lightning.domain.statistics import (
    Interval,
    bootstrap_compare,
    bootstrap_compare_many,
    bootstrap_interval,
    holm_adjust,
    mean,
    newcombe_difference_interval,
    percentile,
    percentile_of,
    two_proportion_z_test,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "n"), [(45, 50), (0, 10), (10, 10), (1, 30), (17, 40), (500, 1000), (3, 7)]
)
@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.8])
def test_wilson_interval_matches_scipy(successes: int, n: int, confidence: float) -> None:
    expected = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    got = wilson_interval(successes, n, confidence=confidence)
    assert got.low == pytest.approx(expected.low, abs=1e-9)
    assert got.high == pytest.approx(expected.high, abs=1e-9)


def test_wilson_45_of_50_known_value() -> None:
    # Hand-computed: p=0.9, z=1.959964: centre 0.87485, half-width 0.08765.
    interval = wilson_interval(45, 50)
    assert interval.low == pytest.approx(0.78639, abs=1e-4)
    assert interval.high == pytest.approx(0.95653, abs=1e-4)
    assert interval.contains(0.9)


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="between 0 and 5"):
        wilson_interval(6, 5)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 5, confidence=1.0)


@pytest.mark.parametrize(
    ("x_a", "n_a", "x_b", "n_b"), [(45, 50, 30, 50), (120, 200, 150, 210), (5, 40, 6, 41), (0, 30, 3, 30)]
)
def test_z_test_matches_chi_square_without_correction(x_a: int, n_a: int, x_b: int, n_b: int) -> None:
    table = [[x_a, n_a - x_a], [x_b, n_b - x_b]]
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    result = two_proportion_z_test(x_a, n_a, x_b, n_b)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-9)
    # Positive z means the second proportion is the larger.
    assert (result.statistic > 0) == (x_b / n_b > x_a / n_a)


def test_z_test_known_value() -> None:
    # 45/50 vs 30/50: pooled 0.75, se = sqrt(0.75*0.25*0.04) = 0.0866, z = -3.4641, p = 0.000532.
    result = two_proportion_z_test(45, 50, 30, 50)
    assert result.statistic == pytest.approx(-3.464102, abs=1e-6)
    assert result.p_value == pytest.approx(0.000532, abs=1e-6)


def test_z_test_with_no_variance_is_no_evidence() -> None:
    assert two_proportion_z_test(0, 40, 0, 50).p_value == 1.0
    assert two_proportion_z_test(40, 40, 50, 50).p_value == 1.0


def test_newcombe_interval_matches_the_paper() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10: 0.0524, 0.3339.
    interval = newcombe_difference_interval(48, 80, 56, 70)
    assert interval.low == pytest.approx(0.0524, abs=1e-4)
    assert interval.high == pytest.approx(0.3339, abs=1e-4)
    # Example (h): 10/10 vs 0/10 → 0.6075 to 1.0.
    interval = newcombe_difference_interval(0, 10, 10, 10)
    assert interval.low == pytest.approx(0.6075, abs=1e-4)
    assert interval.high == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("q", [0, 5, 25, 50, 75, 90, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    rng = Random(7)
    values = [rng.expovariate(1 / 300) for _ in range(137)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    assert percentile_of(q)(values) == percentile(values, q)


def test_percentile_and_mean_edge_cases() -> None:
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert mean([1.0, 2.0, 6.0]) == 3.0
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="empty"):
        mean([])
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_bootstrap_interval_agrees_with_scipy_and_normal_theory() -> None:
    rng = Random(11)
    values = [rng.gauss(0.6, 0.15) for _ in range(400)]
    ours = bootstrap_interval(values, mean, rng=Random(1), resamples=4000)
    theirs = stats.bootstrap(
        (np.array(values),), np.mean, method="percentile", n_resamples=4000, rng=np.random.default_rng(1)
    ).confidence_interval
    half_width = 1.959964 * float(np.std(values, ddof=1)) / len(values) ** 0.5
    for bound, other, normal in (
        (ours.low, theirs.low, mean(values) - half_width),
        (ours.high, theirs.high, mean(values) + half_width),
    ):
        # Monte Carlo noise of either bootstrap is ~2% of the half-width; 10% is a safe margin.
        assert bound == pytest.approx(other, abs=0.1 * half_width)
        assert bound == pytest.approx(normal, abs=0.1 * half_width)


def test_bootstrap_is_reproducible_with_the_same_seed() -> None:
    values = [float(v) for v in range(50)]
    first = bootstrap_interval(values, mean, rng=Random(3), resamples=500)
    assert bootstrap_interval(values, mean, rng=Random(3), resamples=500) == first
    assert bootstrap_interval([2.5] * 20, mean, rng=Random(3), resamples=200) == Interval(2.5, 2.5)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_interval([], mean, rng=Random(3))


def test_bootstrap_compare_detects_a_shift_and_agrees_with_welch() -> None:
    rng = Random(5)
    a = [rng.gauss(0.55, 0.15) for _ in range(150)]
    b = [rng.gauss(0.62, 0.15) for _ in range(150)]
    result = bootstrap_compare(a, b, mean, rng=Random(9), resamples=4000)
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert result.difference == pytest.approx(mean(b) - mean(a))
    assert result.estimate_a == pytest.approx(mean(a))
    assert result.p_value == pytest.approx(welch.pvalue, abs=0.01)
    assert result.p_value < 0.05
    assert result.difference_interval.low > 0  # the interval agrees with the test


def test_bootstrap_compare_same_distribution_is_not_significant() -> None:
    rng = Random(8)
    a = [rng.gauss(0.6, 0.15) for _ in range(200)]
    b = [rng.gauss(0.6, 0.15) for _ in range(200)]
    result = bootstrap_compare(a, b, mean, rng=Random(2), resamples=2000)
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert result.p_value == pytest.approx(welch.pvalue, abs=0.05)
    assert result.p_value > 0.05
    assert result.difference_interval.contains(0.0)


def test_bootstrap_p_value_never_claims_more_than_the_resamples_allow() -> None:
    a = [0.1] * 40
    b = [0.9] * 40
    result = bootstrap_compare(a, b, mean, rng=Random(1), resamples=999)
    assert result.p_value == pytest.approx(2 / 1000)
    identical = bootstrap_compare(a, a, mean, rng=Random(1), resamples=999)
    assert identical.p_value == 1.0


def test_holm_adjust_known_values() -> None:
    # Sorted 0.01, 0.03, 0.04 → 3*0.01=0.03, 2*0.03=0.06, max(0.06, 1*0.04)=0.06; returned in input order.
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []
    assert holm_adjust([0.02]) == [0.02]
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm_adjust([1.5])


def test_bootstrap_compare_many_shares_resamples_and_matches_single_statistics() -> None:
    rng = Random(4)
    a = [rng.expovariate(1 / 800) for _ in range(120)]
    b = [rng.expovariate(1 / 600) for _ in range(130)]
    p50, p95 = bootstrap_compare_many(
        a, b, [percentile_of(50), percentile_of(95)], rng=Random(1), resamples=800
    )
    assert p50.estimate_a == pytest.approx(float(np.percentile(a, 50)))
    assert p95.estimate_b == pytest.approx(float(np.percentile(b, 95)))
    assert p95.interval_a.contains(p95.estimate_a)
    assert p50.difference == pytest.approx(p50.estimate_b - p50.estimate_a)
    with pytest.raises(ValueError, match="at least one statistic"):
        bootstrap_compare_many(a, b, [], rng=Random(1))


def test_bootstrap_test_keeps_its_false_alarm_rate_and_finds_real_shifts() -> None:
    # Calibration: under the null, about 5% of tests may come out significant; with a real shift most should.
    rng = Random(21)
    null_hits = shift_hits = 0
    trials = 120
    for trial in range(trials):
        a = [rng.gauss(0.6, 0.2) for _ in range(60)]
        b = [rng.gauss(0.6, 0.2) for _ in range(60)]
        shifted = [value + 0.15 for value in b]
        null_hits += bootstrap_compare(a, b, mean, rng=Random(trial), resamples=400).p_value < 0.05
        shift_hits += bootstrap_compare(a, shifted, mean, rng=Random(trial), resamples=400).p_value < 0.05
    assert null_hits / trials <= 0.12
    assert shift_hits / trials >= 0.9


def test_z_test_keeps_its_false_alarm_rate() -> None:
    rng = Random(33)
    trials = 2000
    hits = 0
    for _ in range(trials):
        x_a = sum(rng.random() < 0.7 for _ in range(100))
        x_b = sum(rng.random() < 0.7 for _ in range(100))
        hits += two_proportion_z_test(x_a, 100, x_b, 100).p_value < 0.05
    assert 0.02 <= hits / trials <= 0.08

"""The canary judge's statistics and decisions, without any servers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from mlcicd.judge import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Figures,
    Limits,
    bins_from_cumulative,
    fisher_greater,
    judge,
    mann_whitney_greater,
    quantile_from_bins,
)

LIMITS = Limits(min_requests=100, max_error_rate=0.01, max_latency_p99_ms=150)
BOUNDS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, math.inf)


def histogram(samples_ms: np.ndarray) -> tuple[tuple[float, float], ...]:
    edges = [-math.inf, *BOUNDS]
    counts = [
        int(((samples_ms > lo) & (samples_ms <= hi)).sum()) for lo, hi in zip(edges, edges[1:], strict=False)
    ]
    return tuple(zip(BOUNDS, map(float, counts), strict=True))


def variant(
    requests: int, errors: int, latencies_ms: np.ndarray | None = None, p99: float | None = None
) -> Figures:
    bins = histogram(latencies_ms) if latencies_ms is not None else None
    if p99 is None and latencies_ms is not None:
        p99 = float(np.quantile(latencies_ms, 0.99))
    return Figures(requests=requests, errors=errors, p99_ms=p99, bins=bins)


def test_binned_mann_whitney_matches_scipy_on_the_same_ties():
    rng = np.random.default_rng(1)
    canary_bins = rng.integers(0, 40, size=6)
    stable_bins = rng.integers(0, 40, size=6)
    # Expand the bins to samples that tie within a bin: scipy's tie-corrected asymptotic test is the reference.
    canary = np.repeat(np.arange(6), canary_bins)
    stable = np.repeat(np.arange(6), stable_bins)
    expected = mannwhitneyu(
        canary, stable, alternative="greater", method="asymptotic", use_continuity=True
    ).pvalue
    assert mann_whitney_greater(canary_bins.tolist(), stable_bins.tolist()) == pytest.approx(
        expected, rel=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=8))
def test_binned_mann_whitney_is_a_probability_and_agrees_with_scipy(pairs):
    canary_bins = [c for c, _ in pairs]
    stable_bins = [s for _, s in pairs]
    p = mann_whitney_greater(canary_bins, stable_bins)
    assert 0.0 <= p <= 1.0
    canary = np.repeat(np.arange(len(pairs)), canary_bins)
    stable = np.repeat(np.arange(len(pairs)), stable_bins)
    if canary.size and stable.size and len(set(canary) | set(stable)) > 1:
        expected = mannwhitneyu(canary, stable, alternative="greater", method="asymptotic").pvalue
        assert p == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_fisher_one_sided():
    assert fisher_greater(50, 1000, 10, 1000) < 1e-6
    assert fisher_greater(10, 1000, 50, 1000) > 0.99
    assert fisher_greater(0, 1000, 0, 1000) == 1.0
    assert fisher_greater(2.6, 99.7, 0.0, 100.2) == pytest.approx(
        fisher_greater(3, 100, 0, 100)
    )  # extrapolated counts


def test_quantile_from_bins_interpolates_like_histogram_quantile():
    bins = ((10.0, 50.0), (20.0, 50.0), (math.inf, 0.0))
    assert quantile_from_bins(bins, 0.5) == pytest.approx(10.0)
    assert quantile_from_bins(bins, 0.99) == pytest.approx(19.8)
    assert (
        quantile_from_bins(((10.0, 0.0), (math.inf, 5.0)), 0.99) == 10.0
    )  # the +Inf bucket: the highest finite bound
    assert quantile_from_bins(((10.0, 0.0),), 0.5) is None
    assert quantile_from_bins(None, 0.5) is None


def test_bins_from_cumulative_sorts_and_never_goes_negative():
    assert bins_from_cumulative([(math.inf, 10.0), (5.0, 4.0), (10.0, 3.9)]) == (
        (5.0, 4.0),
        (10.0, 0.0),
        (math.inf, 6.0),
    )


def test_threshold_judge():
    fast = np.full(1000, 20.0)
    assert judge("threshold", variant(1000, 5, fast), Figures(None), LIMITS).verdict == PASS
    failed = judge("threshold", variant(1000, 50, fast), Figures(None), LIMITS)
    assert failed.verdict == FAIL and "max-error-rate" in failed.reasons[0]
    slow = judge("threshold", variant(1000, 0, np.full(1000, 200.0)), Figures(None), LIMITS)
    assert slow.verdict == FAIL and "max-latency-p99-ms" in slow.reasons[0]
    no_latency = Limits(min_requests=100, max_error_rate=0.01, max_latency_p99_ms=0)
    assert judge("threshold", variant(1000, 0, p99=None), Figures(None), no_latency).verdict == PASS


def test_threshold_judge_does_not_fail_on_noise_of_a_small_window():
    fast = np.full(100, 20.0)
    # 2 errors in 100 requests: 2 % > 1 %, but a healthy 0.5 % canary does that one time in ten.
    noisy = judge("threshold", variant(100, 2, fast), Figures(None), LIMITS)
    assert noisy.verdict == PASS and "not significantly" in noisy.findings[0].detail
    # 8 in 100 is no accident; nor is 1.2 % over a million requests.
    assert judge("threshold", variant(100, 8, fast), Figures(None), LIMITS).verdict == FAIL
    assert judge("threshold", Figures(1_000_000, 12_000, 20.0), Figures(None), LIMITS).verdict == FAIL
    # p99: 2 of 100 requests above the limit is within what "p99 ≤ limit" allows by chance; 10 is not.
    two_slow = np.array([20.0] * 98 + [200.0] * 2)
    assert judge("threshold", variant(100, 0, two_slow), Figures(None), LIMITS).verdict == PASS
    ten_slow = np.array([20.0] * 90 + [200.0] * 10)
    assert judge("threshold", variant(100, 0, ten_slow), Figures(None), LIMITS).verdict == FAIL
    # Without a histogram there is only the p99 figure to go by.
    assert judge("threshold", Figures(100, 0, 200.0), Figures(None), LIMITS).verdict == FAIL


def test_zero_requests_are_never_judged_even_with_min_requests_0():
    anything = Limits(min_requests=0, max_error_rate=0.01, max_latency_p99_ms=0)
    assert judge("threshold", Figures(0, 0), Figures(0, 0), anything).verdict == INCONCLUSIVE
    assert judge("both", Figures(0, 0), Figures(0, 0), anything).verdict == INCONCLUSIVE


def test_too_few_requests_or_no_data_is_inconclusive_never_pass():
    fast = np.full(50, 20.0)
    few = judge("both", variant(50, 0, fast), variant(5000, 0, np.full(5000, 20.0)), LIMITS)
    assert few.verdict == INCONCLUSIVE and "fewer than min-requests 100" in few.reasons[0]
    assert judge("both", Figures(None), Figures(None), LIMITS).verdict == INCONCLUSIVE
    # A healthy canary but a stable with no traffic: the comparison has nothing to compare with.
    assert (
        judge("statistical", variant(500, 0, np.full(500, 20.0)), variant(0, 0), LIMITS).verdict
        == INCONCLUSIVE
    )


def test_statistical_judge_fails_only_a_significant_difference_beyond_the_band():
    rng = np.random.default_rng(7)
    stable_latency = rng.gamma(4, 5, size=20000)
    stable = variant(20000, 100, stable_latency)  # 0.5 %
    # Same behaviour: pass.
    same = variant(1000, 5, rng.gamma(4, 5, size=1000))
    assert judge("statistical", same, stable, LIMITS).verdict == PASS
    # +5 points of errors: fail on errors.
    errors = judge("statistical", variant(1000, 55, rng.gamma(4, 5, size=1000)), stable, LIMITS)
    assert errors.verdict == FAIL and "error rate" in errors.reasons[0]
    # 3x latency: fail on p99 (Mann-Whitney on buckets).
    slow = judge("statistical", variant(1000, 5, 3 * rng.gamma(4, 5, size=1000)), stable, LIMITS)
    assert slow.verdict == FAIL and "Mann-Whitney" in slow.reasons[0]
    # Significant but inside the band (+0.3 points with huge counts): pass.
    big = judge("statistical", Figures(1_000_000, 8_000, 30.0), Figures(1_000_000, 5_000, 30.0), LIMITS)
    assert big.verdict == PASS


def test_statistical_latency_without_histogram_uses_the_p99_ratio():
    stable = Figures(5000, 0, 40.0)
    assert judge("statistical", Figures(500, 0, 45.0), stable, LIMITS).verdict == PASS
    slow = judge("statistical", Figures(500, 0, 60.0), stable, LIMITS)
    assert slow.verdict == FAIL and "p99 ratio only" in slow.reasons[0]


def test_both_fails_when_either_judge_fails():
    stable = Figures(20000, 0, 200.0)
    canary = Figures(1000, 0, 190.0)  # as fast as stable, but above the absolute limit
    assert judge("statistical", canary, stable, LIMITS).verdict == PASS
    assert judge("both", canary, stable, LIMITS).verdict == FAIL

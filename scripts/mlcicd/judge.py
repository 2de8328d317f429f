"""The canary judge: does the canary behave at least as well as stable over the same window?

Two judges, usable alone or together:

- `threshold`: the canary's own figures against absolute limits (error rate, p99), failed only
  when a limit is exceeded significantly (an exact binomial test), so a small window's noise
  does not roll a healthy canary back.
- `statistical`: canary against stable, in the spirit of Kayenta. Errors: a one-sided Fisher exact
  test; latency: a one-sided Mann-Whitney U test computed from histogram buckets (all a Prometheus
  histogram gives), or the p99 ratio alone where no buckets exist. A difference fails the check only
  when it is significant *and* larger than a tolerance band, because with thousands of requests a
  harmless 0.1 ms shift is significant too.

Never pass on no data: too few requests, or a metrics source that returned nothing, is
INCONCLUSIVE, and the stage decides how long to wait. Pure functions; scipy only for the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
JUDGES = ("threshold", "statistical", "both", "sequential")


@dataclass(frozen=True)
class Figures:
    """What one variant did over the window. None = the metrics source had no answer for it."""

    requests: float | None
    errors: float | None = None
    p99_ms: float | None = None
    bins: tuple[tuple[float, float], ...] | None = None
    """Latency histogram as (upper bound in ms, count in this bin), ascending; the last bound may be inf."""

    @property
    def error_rate(self) -> float | None:
        if not self.requests:
            return None
        return min(1.0, (self.errors or 0.0) / self.requests)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p99_ms": self.p99_ms,
        }


@dataclass(frozen=True)
class Limits:
    min_requests: float
    max_error_rate: float
    max_latency_p99_ms: float
    """0 = no latency limit (a deployment without latency metrics)."""
    alpha: float = 0.01
    error_rate_tolerance: float = 0.005
    """Absolute: the canary may be this much worse than stable (0.005 = half a point) before it fails."""
    latency_tolerance: float = 0.2
    """Relative: the canary's p99 may be this much above stable's (0.2 = 20 %) before it fails."""


@dataclass(frozen=True)
class Finding:
    judge: str
    metric: str
    verdict: str
    detail: str
    p_value: float | None = None
    evidence: dict[str, Any] | None = None
    """The sequential judge's figures at this poll (estimate, anytime-valid bounds, margin, decision)."""


@dataclass
class Verdict:
    verdict: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """What made the verdict: the failures, else the inconclusive findings, else nothing."""
        wanted = FAIL if self.verdict == FAIL else INCONCLUSIVE
        return [f"{f.judge} {f.metric}: {f.detail}" for f in self.findings if f.verdict == wanted]


def combine(findings: list[Finding]) -> Verdict:
    """Any failure fails; else anything inconclusive is inconclusive; else a pass."""
    verdicts = {f.verdict for f in findings}
    if FAIL in verdicts:
        return Verdict(FAIL, findings)
    if INCONCLUSIVE in verdicts:
        return Verdict(INCONCLUSIVE, findings)
    return Verdict(PASS, findings)


def _enough(name: str, figures: Figures, limits: Limits, judge: str) -> Finding | None:
    if figures.requests is None:
        return Finding(
            judge, "requests", INCONCLUSIVE, f"the metrics source returned no request count for {name}"
        )
    if figures.requests < max(
        limits.min_requests, 1
    ):  # never judge zero requests, whatever min-requests says
        return Finding(
            judge,
            "requests",
            INCONCLUSIVE,
            f"{name} served {figures.requests:,.0f} requests, fewer than min-requests "
            f"{max(limits.min_requests, 1):,.0f}",
        )
    return None


def binomial_above(count: float, trials: float, rate: float) -> float:
    """P-value of 'the true share is above `rate`' after `count` of `trials` (one-sided exact binomial)."""
    from scipy.stats import binom

    k, n = round(count), max(round(trials), round(count))
    if k == 0 or n == 0:
        return 1.0
    return float(binom.sf(k - 1, n, rate)) if rate > 0 else 0.0


def threshold_judge(canary: Figures, limits: Limits) -> list[Finding]:
    """Absolute limits, with the sampling noise of a small window taken into account: 2 errors in 100
    requests is no evidence that a canary's error rate is above 1 %, and rolling it back for that
    would roll back most healthy canaries over a few steps. A limit fails when it is exceeded
    significantly (one-sided exact binomial test at `alpha`); with many requests that is any excess."""
    short = _enough("the canary", canary, limits, "threshold")
    if short:
        return [short]
    rate = canary.error_rate or 0.0
    findings = []
    if rate <= limits.max_error_rate:
        findings.append(
            Finding(
                "threshold", "error rate", PASS, f"{rate:.2%} ≤ max-error-rate {limits.max_error_rate:.2%}"
            )
        )
    else:
        p = binomial_above(canary.errors or 0.0, canary.requests or 0.0, limits.max_error_rate)
        verdict = FAIL if p < limits.alpha else PASS
        detail = (
            f"{rate:.2%} > max-error-rate {limits.max_error_rate:.2%} "
            f"({'significantly' if verdict == FAIL else 'not significantly'}: binomial p={p:.2g})"
        )
        findings.append(Finding("threshold", "error rate", verdict, detail, p))
    if limits.max_latency_p99_ms > 0:
        findings.append(_p99_limit(canary, limits))
    return findings


def _p99_limit(canary: Figures, limits: Limits) -> Finding:
    limit = limits.max_latency_p99_ms
    p99 = canary.p99_ms if canary.p99_ms is not None else quantile_from_bins(canary.bins, 0.99)
    if p99 is None:
        return Finding(
            "threshold", "p99", INCONCLUSIVE, "the metrics source returned no latency for the canary"
        )
    if p99 <= limit:
        return Finding("threshold", "p99", PASS, f"{p99:.1f} ms ≤ max-latency-p99-ms {limit:g}")
    if not canary.bins:
        return Finding(
            "threshold",
            "p99",
            FAIL,
            f"{p99:.1f} ms > max-latency-p99-ms {limit:g} (no histogram: the p99 figure alone)",
        )
    # p99 ≤ limit means at most 1 % of requests slower than the limit: test the count that was slower.
    slower = count_above(canary.bins, limit)
    total = sum(c for _, c in canary.bins)
    p = binomial_above(slower, total, 0.01)
    verdict = FAIL if p < limits.alpha else PASS
    detail = (
        f"{p99:.1f} ms > max-latency-p99-ms {limit:g} "
        f"({'significantly' if verdict == FAIL else 'not significantly'}: "
        f"{slower:,.0f} of {total:,.0f} requests slower, binomial p={p:.2g})"
    )
    return Finding("threshold", "p99", verdict, detail, p)


def count_above(bins: Sequence[tuple[float, float]], limit: float) -> float:
    """Requests slower than `limit`, interpolating inside the bucket that holds it (as histogram_quantile
    does)."""
    above, lower = 0.0, 0.0
    for upper, count in bins:
        if lower >= limit:
            above += count
        elif upper > limit:
            share = 1.0 if math.isinf(upper) else (upper - limit) / (upper - lower)
            above += count * share
        lower = upper if not math.isinf(upper) else lower
    return above


def statistical_judge(canary: Figures, stable: Figures, limits: Limits) -> list[Finding]:
    short = [
        f
        for f in (
            _enough("the canary", canary, limits, "statistical"),
            _enough("stable", stable, limits, "statistical"),
        )
        if f
    ]
    if short:
        return short
    return [_compare_errors(canary, stable, limits), _compare_latency(canary, stable, limits)]


def _compare_errors(canary: Figures, stable: Figures, limits: Limits) -> Finding:
    c_rate, s_rate = canary.error_rate or 0.0, stable.error_rate or 0.0
    p = fisher_greater(
        canary.errors or 0.0, canary.requests or 0.0, stable.errors or 0.0, stable.requests or 0.0
    )
    worse = c_rate - s_rate > limits.error_rate_tolerance and p < limits.alpha
    detail = (
        f"canary {c_rate:.2%} vs stable {s_rate:.2%} (Fisher one-sided p={p:.2g}, tolerance "
        f"+{limits.error_rate_tolerance:.2%})"
    )
    return Finding("statistical", "error rate", FAIL if worse else PASS, detail, p)


def _compare_latency(canary: Figures, stable: Figures, limits: Limits) -> Finding:
    c_p99 = canary.p99_ms if canary.p99_ms is not None else quantile_from_bins(canary.bins, 0.99)
    s_p99 = stable.p99_ms if stable.p99_ms is not None else quantile_from_bins(stable.bins, 0.99)
    if c_p99 is None or s_p99 is None:
        return Finding(
            "statistical", "p99", INCONCLUSIVE, "the metrics source returned no latency for both variants"
        )
    band = s_p99 * (1 + limits.latency_tolerance)
    above = c_p99 > band
    tolerance = f"tolerance +{limits.latency_tolerance:.0%}"
    if canary.bins and stable.bins and [b for b, _ in canary.bins] == [b for b, _ in stable.bins]:
        p = mann_whitney_greater([c for _, c in canary.bins], [c for _, c in stable.bins])
        worse = above and p < limits.alpha
        detail = (
            f"p99 canary {c_p99:.1f} ms vs stable {s_p99:.1f} ms (Mann-Whitney on buckets, one-sided "
            f"p={p:.2g}, {tolerance})"
        )
        return Finding("statistical", "p99", FAIL if worse else PASS, detail, p)
    detail = f"p99 canary {c_p99:.1f} ms vs stable {s_p99:.1f} ms (no histogram: p99 ratio only, {tolerance})"
    return Finding("statistical", "p99", FAIL if above else PASS, detail)


def judge(kind: str, canary: Figures, stable: Figures, limits: Limits) -> Verdict:
    """One check of one step. `kind`: threshold, statistical or both (sequential:
    mlcicd.sequential.sequential_verdict)."""
    findings: list[Finding] = []
    if kind in ("threshold", "both"):
        findings += threshold_judge(canary, limits)
    if kind in ("statistical", "both"):
        findings += statistical_judge(canary, stable, limits)
    if kind == "sequential":
        # decided at every poll by mlcicd.sequential (which builds on this module), not here: judging it as an
        # empty list of findings would pass it
        raise ValueError("the sequential judge is mlcicd.sequential.sequential_verdict")
    return combine(findings)


# --- statistics -------------------------------------------------------------------------------


def fisher_greater(
    canary_errors: float, canary_requests: float, stable_errors: float, stable_requests: float
) -> float:
    """P-value of 'the canary's error rate is higher than stable's' (one-sided Fisher exact test).

    Counts from Prometheus' increase() are extrapolated floats; the test needs whole requests.
    """
    from scipy.stats import fisher_exact

    ce, cr = round(canary_errors), max(round(canary_requests), round(canary_errors))
    se, sr = round(stable_errors), max(round(stable_requests), round(stable_errors))
    if cr == 0 or sr == 0 or ce + se == 0:
        return 1.0
    _, p = fisher_exact([[ce, cr - ce], [se, sr - se]], alternative="greater")
    return float(min(1.0, max(0.0, p)))


def mann_whitney_greater(canary_counts: Sequence[float], stable_counts: Sequence[float]) -> float:
    """P-value of 'canary latencies are stochastically larger than stable's', from counts per bin.

    Binned data is the tied-ranks case of Mann-Whitney: every request in one bin ties with every
    other in that bin. U counts (canary, stable) pairs where the canary is slower, ties counting
    one half; the normal approximation uses the tie-corrected variance (exact for these sizes).
    """
    from scipy.stats import norm

    n_c, n_s = float(sum(canary_counts)), float(sum(stable_counts))
    if n_c <= 0 or n_s <= 0:
        return 1.0
    u = 0.0
    stable_below = 0.0
    ties = 0.0
    for c, s in zip(canary_counts, stable_counts, strict=True):
        u += c * (stable_below + 0.5 * s)
        stable_below += s
        t = c + s
        ties += t**3 - t
    n = n_c + n_s
    variance = n_c * n_s / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0  # every request in one bin: no evidence either way
    z = (u - n_c * n_s / 2.0 - 0.5) / math.sqrt(variance)
    return float(norm.sf(z))


def quantile_from_bins(bins: Sequence[tuple[float, float]] | None, q: float) -> float | None:
    """The q-quantile by linear interpolation inside the bucket, as Prometheus' histogram_quantile."""
    if not bins:
        return None
    total = sum(c for _, c in bins)
    if total <= 0:
        return None
    rank = q * total
    lower, seen = 0.0, 0.0
    for upper, count in bins:
        if seen + count >= rank and count > 0:
            if math.isinf(upper):
                return lower  # histogram_quantile returns the highest finite bound here
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        if not math.isinf(upper):
            lower = upper
    return lower


def bins_from_cumulative(cumulative: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """(le, cumulative count) as scraped → (upper bound, count in bin). Counter resets can make an
    extrapolated cumulative count dip below the previous one; such bins count zero."""
    result = []
    previous = 0.0
    for upper, count in sorted(cumulative, key=lambda pair: pair[0]):
        result.append((upper, max(0.0, count - previous)))
        previous = max(previous, count)
    return tuple(result)

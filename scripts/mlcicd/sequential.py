"""Anytime-valid statistics for the `sequential` canary judge: look as often as you like.

A fixed-sample test (Fisher, Mann-Whitney) is valid for one look at a sample size chosen in advance;
looked at every poll, its false-rollback rate grows with every look. A *confidence sequence* covers
the true value at every sample size at once: P(ever outside) ≤ alpha, however often and whenever it
is read (Howard, Ramdas, McAuliffe, Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic
confidence sequences", Ann. Statist. 49(2)). So the rollout can decide at any poll, in both
directions, with the rollback rate of a healthy canary still bounded by alpha.

The bounds here are the paper's one-sided **beta-binomial mixture** for Bernoulli observations
(a request errs or not; a request is slower than a latency limit or not): a conjugate mixture of
likelihood ratios, which is a nonnegative supermartingale, so Ville's inequality bounds the chance
that it ever reaches 1/alpha. It is exact for any number of requests, including the rare-event
regime (a handful of errors) where normal approximations are wrong. The formulas follow the
authors' reference implementation (confseq, `BetaBinomialMixture`, `bernoulli_confidence_interval`),
and tests/test_sequential.py checks them against that library's published test values. confseq
itself is a C++ extension shipped as a source archive only, too heavy a build for the toolkit's
runner venv, hence this port (scipy only).

How the judge uses them (decide only, no I/O):

- error rate: canary minus stable, from one-sided bounds of each (alpha split between the two;
  the non-inferiority side at ADVANCE_ALPHA):
  worse when `lower(canary) − upper(stable) > error-rate-tolerance`; non-inferior when
  `upper(canary) − lower(stable) ≤ error-rate-tolerance`;
- latency: the canary's p99 is within `latency-tolerance` of stable's exactly when at most 1 % of
  canary requests are slower than `stable p99 × (1 + latency-tolerance)`; that share, read from the
  histogram buckets, is bounded the same way against 1 %.

Bounds depend only on the cumulative counts of the step's window, not on the path, so each poll is
a pure function of what Prometheus' increase() over the window returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlcicd.confidence_sequences import (
    _bernoulli_log_mixture,
    beta_binomial_log_mixture,
    confidence_interval,
    lower_bound,
    upper_bound,
)
from mlcicd.judge import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Figures,
    Finding,
    Limits,
    Verdict,
    combine,
    count_above,
    quantile_from_bins,
)

__all__ = [  # the bounds are re-exported for the tests that check them against confseq's values
    "_bernoulli_log_mixture",
    "beta_binomial_log_mixture",
    "confidence_interval",
    "lower_bound",
    "sequential_verdict",
    "size_steps",
    "sizing_warnings",
    "undecided_only",
    "upper_bound",
]

WORSE, NON_INFERIOR, UNDECIDED = "worse", "non-inferior", "undecided"
TAIL_SHARE = 0.01
"""p99: at most 1 % of requests above it."""
ADVANCE_ALPHA = 0.05
"""Per step and metric, the chance that a canary exactly at the margin is shown non-inferior (and advanced
early).
Looser than alpha on purpose: at the end of `interval` a step passes anyway when nothing was shown worse (as a
fixed-sample test that is not significant does), so early advance only brings that pass forward; alpha, the
chance of rolling back a healthy canary, is the guarantee users set."""


# --- the judge ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One metric at one poll: the estimate of the canary's excess, its anytime-valid bounds, the margin."""

    metric: str
    estimate: float
    lower: float
    upper: float
    margin: float
    decision: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _decide(lower: float, upper: float, margin: float) -> str:
    if lower > margin:
        return WORSE
    if upper <= margin:
        return NON_INFERIOR
    return UNDECIDED


def error_evidence(canary: Figures, stable: Figures, limits: Limits) -> Evidence:
    """Canary minus stable error rate. The alpha of this test is split between the two one-sided bounds (a
    union
    bound): the difference's lower bound is wrong only if one of them is."""
    half, advance = limits.alpha / 2, ADVANCE_ALPHA / 2
    ce, cn = canary.errors or 0.0, canary.requests or 0.0
    se, sn = stable.errors or 0.0, stable.requests or 0.0
    lower = lower_bound(ce, cn, half) - upper_bound(se, sn, half)
    upper = upper_bound(ce, cn, advance) - lower_bound(se, sn, advance)
    estimate = (canary.error_rate or 0.0) - (stable.error_rate or 0.0)
    return Evidence(
        "error rate",
        estimate,
        lower,
        upper,
        limits.error_rate_tolerance,
        _decide(lower, upper, limits.error_rate_tolerance),
    )


def latency_limit_ms(stable: Figures, limits: Limits) -> float | None:
    """stable's p99 × (1 + latency-tolerance): the latency that at most 1 % of canary requests may exceed."""
    p99 = stable.p99_ms if not stable.bins else quantile_from_bins(stable.bins, 1 - TAIL_SHARE)
    return None if p99 is None else p99 * (1 + limits.latency_tolerance)


def latency_evidence(canary: Figures, stable: Figures, limits: Limits) -> Evidence | None:
    """Share of canary requests slower than stable's p99 × (1 + tolerance), against 1 %. Counts interpolate
    inside
    the bucket as histogram_quantile does, so a canary identical to stable sits at or under 1 % whatever the
    buckets.
    None without histograms (a p99 figure alone has no sample size to bound)."""
    if not canary.bins or not stable.bins:
        return None
    limit = latency_limit_ms(stable, limits)
    total = sum(c for _, c in canary.bins)
    if limit is None or total <= 0:
        return None
    slower = count_above(canary.bins, limit)
    lower, upper = lower_bound(slower, total, limits.alpha), upper_bound(slower, total, ADVANCE_ALPHA)
    return Evidence("p99", slower / total, lower, upper, TAIL_SHARE, _decide(lower, upper, TAIL_SHARE))


def sequential_judge(canary: Figures, stable: Figures, limits: Limits) -> list[Finding]:
    """One poll: FAIL (shown worse than the margin), PASS (shown non-inferior on ≥ min-requests), INCONCLUSIVE
    (not yet decided, or data missing). A missing metric is never read as a pass."""
    findings: list[Finding] = []
    for name, figures in (("the canary", canary), ("stable", stable)):
        if figures.requests is None:
            findings.append(
                Finding(
                    "sequential",
                    "requests",
                    INCONCLUSIVE,
                    f"the metrics source returned no request count for {name}",
                )
            )
    if findings:
        return findings
    enough = min(canary.requests or 0.0, stable.requests or 0.0) >= max(limits.min_requests, 1)
    evidence = [error_evidence(canary, stable, limits)]
    latency = latency_evidence(canary, stable, limits)
    if latency is not None:
        evidence.append(latency)
    for e in evidence:
        findings.append(_finding(e, enough, limits))
    if latency is None:
        findings.append(
            Finding(
                "sequential",
                "p99",
                INCONCLUSIVE,
                "the metrics source returned no latency histogram for both variants",
            )
        )
    if not enough and not any(f.verdict == FAIL for f in findings):
        findings.append(
            Finding(
                "sequential",
                "requests",
                INCONCLUSIVE,
                f"canary {canary.requests:,.0f} / stable {stable.requests:,.0f} requests, fewer than "
                f"min-requests {max(limits.min_requests, 1):,.0f}",
            )
        )
    return findings


def sequential_verdict(canary: Figures, stable: Figures, limits: Limits) -> Verdict:
    """One poll's verdict, as mlcicd.judge.judge gives one check's."""
    return combine(sequential_judge(canary, stable, limits))


def _finding(e: Evidence, enough: bool, limits: Limits) -> Finding:
    if e.metric == "error rate":
        shown = (
            f"canary − stable {e.estimate:+.2%}, anytime-valid bounds [{e.lower:+.2%}, {e.upper:+.2%}], "
            f"margin +{e.margin:.2%}"
        )
    else:
        shown = (
            f"{e.estimate:.2%} of canary requests slower than stable p99 × {1 + limits.latency_tolerance:g}, "
            f"bounds [{e.lower:.2%}, {e.upper:.2%}], margin {e.margin:.0%}"
        )
    if e.decision == WORSE:
        verdict = FAIL
    elif e.decision == NON_INFERIOR and enough:
        verdict = PASS
    else:
        verdict = INCONCLUSIVE
    return Finding("sequential", e.metric, verdict, f"{e.decision}: {shown}", evidence=e.as_dict())


def undecided_only(findings: list[Finding]) -> bool:
    """At the end of an interval: nothing shown worse, every metric present and measured on ≥ min-requests,
    only
    not yet shown non-inferior. That is a pass, as a fixed-sample test that is not significant is."""
    return bool(findings) and all(
        f.verdict == PASS or (f.verdict == INCONCLUSIVE and f.evidence is not None) for f in findings
    )


# --- traffic sizing ---------------------------------------------------------------------------------


def detectable_error_excess(
    canary_requests: float, stable_requests: float, base_rate: float, limits: Limits
) -> float | None:
    """The smallest canary-minus-stable error-rate excess that the bounds show worse than the margin with
    these
    requests, if the counts come out at their expected values; None when no excess up to 100 % would do."""
    if canary_requests <= 0 or stable_requests <= 0:
        return None
    half = limits.alpha / 2
    base = min(max(base_rate, 0.0), 1.0)
    stable_upper = upper_bound(base * stable_requests, stable_requests, half)

    def shown(excess: float) -> bool:
        rate = min(1.0, base + excess)
        return (
            lower_bound(rate * canary_requests, canary_requests, half) - stable_upper
            > limits.error_rate_tolerance
        )

    top = 1.0 - base
    if not shown(top):
        return None
    lo, hi = 0.0, top
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if shown(mid) else (mid, hi)
    return hi


def detectable_tail_share(canary_requests: float, limits: Limits) -> float | None:
    """The smallest share of canary requests slower than stable p99 × (1 + latency-tolerance) shown above 1 %
    with
    this many requests (expected counts); None when even 100 % would not be."""
    if canary_requests <= 0:
        return None

    def shown(share: float) -> bool:
        return lower_bound(share * canary_requests, canary_requests, limits.alpha) > TAIL_SHARE

    if not shown(1.0):
        return None
    lo, hi = TAIL_SHARE, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if shown(mid) else (mid, hi)
    return hi


def p99_ratio_for_tail_share(share: float, limits: Limits, sigma: float = 0.42) -> float:
    """The canary p99 ÷ stable p99 at which `share` of canary requests exceed stable p99 × (1 + tolerance),
    for a
    lognormal latency with log-sd `sigma` (0.42: median 30 ms, p99 80 ms) shifted as a whole: a reading aid
    only."""
    from scipy.stats import norm

    z99 = float(norm.isf(TAIL_SHARE))
    return (1 + limits.latency_tolerance) * math.exp(sigma * (z99 - float(norm.isf(share))))


@dataclass(frozen=True)
class StepSize:
    """What one judged step can see within `interval`, at the request rate measured before the rollout."""

    weight: float
    canary_requests: float
    stable_requests: float
    error_excess: float | None
    """Smallest canary-minus-stable error-rate excess rolled back within the interval (None: none is)."""
    slower_share: float | None
    """Smallest share of canary requests slower than stable p99 × (1 + tolerance) rolled back (None: none)."""
    p99_ratio: float | None
    """The same as a canary/stable p99 ratio, for lognormal latencies (a reading aid)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def size_steps(
    weights: list[float], rate_per_s: float, interval_s: float, base_error_rate: float, limits: Limits
) -> list[StepSize]:
    """For each judged weight (percent), the requests one interval brings and the smallest regression the
    sequential bounds roll back within it, if the counts come out at their expected values."""
    sizes = []
    for weight in weights:
        n_c = rate_per_s * interval_s * weight / 100
        n_s = rate_per_s * interval_s * (100 - weight) / 100
        excess = detectable_error_excess(n_c, n_s, base_error_rate, limits)
        share = detectable_tail_share(n_c, limits)
        ratio = p99_ratio_for_tail_share(share, limits) if share is not None and share < 1 else None
        sizes.append(StepSize(weight, n_c, n_s, excess, share, ratio))
    return sizes


def sizing_warnings(sizes: list[StepSize], limits: Limits, interval_s: float) -> list[str]:
    """The steps whose traffic cannot do what the options ask: judge at all (min-requests), or roll back an
    error-rate regression of twice error-rate-tolerance within one interval."""
    out = []
    for size in sizes:
        where = (
            f"the {size.weight:g} % step gets about {size.canary_requests:,.0f} canary requests per interval "
            f"({interval_s:g} s)"
        )
        if size.canary_requests < max(limits.min_requests, 1):
            out.append(
                f"{where}, fewer than min-requests {limits.min_requests:,.0f}: its checks will be "
                "inconclusive"
            )
        elif size.error_excess is None or size.error_excess > 2 * limits.error_rate_tolerance:
            shown = (
                "no error-rate regression"
                if size.error_excess is None
                else f"only errors {size.error_excess:+.2%} or more"
            )
            out.append(
                f"{where}: it can roll back {shown} within the interval, against error-rate-tolerance "
                f"{limits.error_rate_tolerance:.2%}"
            )
    return out

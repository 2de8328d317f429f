"""Judge a custom check (mlcicd.checks) over one window: pure functions, no I/O.

The same rules as the error and latency judges (mlcicd.judge):

- against stable, a check fails only when the canary is worse than the tolerance band **and** the
  difference is significant at the rollout's per-test alpha: a rate by a one-sided Fisher exact test
  (shares) or the conditional binomial test of two Poisson rates (counts that can exceed their
  denominator); a mean by Welch's z-test when the source gives the sum of squares, else the figures
  alone; a histogram quantile by the one-sided Mann-Whitney test on the buckets;
- against a `limit`, it fails when the limit is crossed significantly (an exact binomial or Poisson
  test for a rate, the share of observations beyond the limit for a quantile);
- too few observations (the denominator, or the histogram's total, below `min-count`, by default
  min-requests) or no answer from the source is INCONCLUSIVE, never a pass.

Output drift (kind `drift`) is mlcicd.output_compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlcicd.checks import Check, Sample
from mlcicd.judge import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Finding,
    binomial_above,
    count_above,
    fisher_greater,
    mann_whitney_greater,
)
from mlcicd.judge import quantile_from_bins as quantile

JUDGE = "check"
PENDING = "undecided"


@dataclass(frozen=True)
class Outcome:
    """One check at one look: the figure of each variant (the rate, mean, quantile, or for drift the median
    score / the top class's share), the verdict and why."""

    check: str
    kind: str
    canary: float | None
    stable: float | None
    verdict: str
    detail: str
    p_value: float | None = None
    statistics: dict[str, float] | None = None

    def finding(self, *, pending: bool = False) -> Finding:
        """As a finding of the step's verdict. `pending` (a sequential poll before the interval's end): the
        fixed-sample test waits for the end of the interval, so the check is undecided, not failed or passed,
        unless data is missing."""
        if pending and self.verdict != INCONCLUSIVE:
            evidence = {"decision": PENDING, "note": "judged at the end of the interval"}
            return Finding(
                JUDGE, self.check, INCONCLUSIVE, f"{PENDING}: {self.detail}", self.p_value, evidence
            )
        return Finding(JUDGE, self.check, self.verdict, self.detail, self.p_value)

    def as_dict(self, *, pending: bool = False) -> dict[str, Any]:
        """For the report; `pending` as in finding(): the verdict so far is kept as `pending_verdict`."""
        out = {k: v for k, v in vars(self).items() if v is not None or k in ("canary", "stable")}
        if pending and self.verdict != INCONCLUSIVE:
            out.update(verdict=INCONCLUSIVE, pending_verdict=self.verdict)
        return out


def figure(check: Check, sample: Sample | None) -> float | None:
    """The figure a check compares: events/trials, sum/count, or the histogram's quantile."""
    if sample is None:
        return None
    if check.kind == "histogram":
        return quantile(sample.bins, check.quantile)
    if sample.value is None or not sample.count:
        return None
    return sample.value / sample.count


def observations(check: Check, sample: Sample) -> float:
    if check.kind in ("histogram", "drift"):
        if sample.bins:
            return sum(c for _, c in sample.bins)
        return sum(c for _, c in sample.classes or ())
    return sample.count or 0.0


def shortage(check: Check, samples: dict[str, Sample | None], min_count: float) -> str | None:
    """Why the window cannot be judged yet (no answer, too few observations), or None."""
    need = max(check.min_count if check.min_count is not None else min_count, 1.0)
    for who, sample in samples.items():
        if (
            sample is None
            or sample.missing
            or (check.kind not in ("histogram", "drift") and sample.value is None)
        ):
            return f"the metrics source returned nothing for {who}"
        if observations(check, sample) < need:
            return f"{who} has {observations(check, sample):,.0f} observations, fewer than {need:,.0f}"
    return None


def _worse_by(check: Check, canary: float, stable: float) -> float:
    """How much worse the canary is than stable (negative: better), in the tolerance's terms."""
    gap = stable - canary if check.better == "higher" else canary - stable
    if check.tolerance_type == "absolute":
        return gap
    if stable == 0:
        return 0.0 if gap <= 0 else math.inf
    return gap / abs(stable)


def _shown(check: Check, worse: float) -> str:
    word = "worse" if worse > 0 else "better"
    if check.tolerance_type == "absolute":
        return f"{abs(worse):.4g} {word}"
    return f"{abs(worse):.1%} {word}" if math.isfinite(worse) else "worse than a stable figure of 0"


def _proportions(*samples: Sample) -> bool:
    return all((s.value or 0.0) <= (s.count or 0.0) + 1e-9 for s in samples)


def _rate_p(check: Check, canary: Sample, stable: Sample) -> tuple[float, str]:
    ec, nc, es, ns = canary.value or 0.0, canary.count or 0.0, stable.value or 0.0, stable.count or 0.0
    if _proportions(canary, stable):
        if check.better == "higher":  # fewer events = more non-events
            return fisher_greater(nc - ec, nc, ns - es, ns), "Fisher"
        return fisher_greater(ec, nc, es, ns), "Fisher"
    from scipy.stats import binom

    total, share = round(ec + es), nc / (nc + ns)
    k = round(ec)
    p = binom.cdf(k, total, share) if check.better == "higher" else binom.sf(k - 1, total, share)
    return float(p), "Poisson rates"


def _mean_p(check: Check, canary: Sample, stable: Sample | None, gap: float) -> float | None:
    """One-sided p of 'worse by gap' (Welch z for two means, z for one mean against a limit);
    None without squares."""
    variance = 0.0
    for sample in (canary, stable):
        if sample is None:
            continue
        if sample.squares is None or not sample.count or sample.count < 2 or sample.value is None:
            return None
        n, mean = sample.count, sample.value / sample.count
        variance += max(0.0, sample.squares / n - mean * mean) * n / (n - 1) / n
    if variance <= 0:
        return 0.0 if gap > 0 else 1.0
    from mlcicd.drift import normal_sf  # numpy: imported when a check needs it, not with the stage

    return normal_sf(gap / math.sqrt(variance))


def _against_stable(
    check: Check, canary: Sample, stable: Sample, alpha: float
) -> tuple[str, str, float | None]:
    c, s = figure(check, canary), figure(check, stable)
    if c is None or s is None:
        return INCONCLUSIVE, f"no {check.kind} figure for both variants", None
    worse = _worse_by(check, c, s)
    band = check.tolerance or 0.0
    tolerance = (
        f"tolerance {band:.4g} {check.tolerance_type}"
        if check.tolerance_type == "absolute"
        else f"tolerance {band:.1%}"
    )
    p: float | None
    if check.kind == "rate":
        p, test = _rate_p(check, canary, stable)
    elif check.kind == "mean":
        p, test = _mean_p(check, canary, stable, s - c if check.better == "higher" else c - s), "Welch z"
    else:
        same_bins = canary.bins and stable.bins and [b for b, _ in canary.bins] == [b for b, _ in stable.bins]
        p, test = None, "Mann-Whitney on buckets"
        if same_bins and canary.bins and stable.bins:
            cc, sc = [n for _, n in canary.bins], [n for _, n in stable.bins]
            p = mann_whitney_greater(sc, cc) if check.better == "higher" else mann_whitney_greater(cc, sc)
    evidence = f"{test} one-sided p={p:.2g}" if p is not None else "figures alone: the source gives no spread"
    failed = worse > band and (p is None or p < alpha)
    detail = f"canary {c:.4g} vs stable {s:.4g}: {_shown(check, worse)} ({evidence}, {tolerance})"
    return (FAIL if failed else PASS), detail, p


def _against_limit(check: Check, sample: Sample, alpha: float, who: str) -> tuple[str, str, float | None]:
    value, limit = figure(check, sample), check.limit
    assert limit is not None
    if value is None:
        return INCONCLUSIVE, f"no {check.kind} figure for {who}", None
    beyond = value < limit if check.better == "higher" else value > limit
    bound = f"{'≥' if check.better == 'higher' else '≤'} limit {limit:.4g}"
    if not beyond:
        return PASS, f"{who} {value:.4g} {bound}", None
    p: float | None = None
    if check.kind == "rate":
        p = _rate_limit_p(check, sample, limit)
    elif check.kind == "mean":
        p = _mean_p(check, sample, None, limit - value if check.better == "higher" else value - limit)
    elif sample.bins:
        total = sum(c for _, c in sample.bins)
        above = count_above(sample.bins, limit)
        # the quantile is beyond the limit when more than (1 - q) of the values are above it (or q below it)
        p = (
            binomial_above(above, total, 1 - check.quantile)
            if check.better == "lower"
            else binomial_above(total - above, total, check.quantile)
        )
    failed = p is None or p < alpha
    how = "figures alone" if p is None else f"{'significantly' if failed else 'not significantly'}: p={p:.2g}"
    return (FAIL if failed else PASS), f"{who} {value:.4g}, not {bound} ({how})", p


def _rate_limit_p(check: Check, sample: Sample, limit: float) -> float:
    events, trials = sample.value or 0.0, sample.count or 0.0
    if _proportions(sample):
        share = min(max(limit, 0.0), 1.0)
        if check.better == "lower":
            return binomial_above(events, trials, share)
        from scipy.stats import binom

        return float(binom.cdf(round(events), max(round(trials), round(events)), share))
    from scipy.stats import poisson

    expected = max(limit, 0.0) * trials
    k = round(events)
    return float(poisson.cdf(k, expected) if check.better == "higher" else poisson.sf(k - 1, expected))


def judge_check(
    check: Check, canary: Sample | None, stable: Sample | None, alpha: float, min_count: float
) -> Outcome:
    """One look at one check (rate, mean or histogram; drift is mlcicd.output_compare.compare_outputs)."""
    who = "the pair" if check.pairwise else "the canary"
    samples: dict[str, Sample | None] = (
        {who: canary} if check.pairwise else {"the canary": canary, "stable": stable}
    )
    c_figure = figure(check, canary)
    s_figure = None if check.pairwise else figure(check, stable)
    short = shortage(check, samples, min_count)
    if short or canary is None:
        return Outcome(check.name, check.kind, c_figure, s_figure, INCONCLUSIVE, short or "no data")
    parts: list[tuple[str, str, float | None]] = []
    if check.tolerance is not None and stable is not None:
        parts.append(_against_stable(check, canary, stable, alpha))
    if check.limit is not None:
        parts.append(_against_limit(check, canary, alpha, who))
    verdicts = {v for v, _, _ in parts}
    verdict = FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS
    p_values = [p for v, _, p in parts if p is not None and (v == verdict or verdict == PASS)]
    detail = "; ".join(d for _, d, _ in parts)
    return Outcome(
        check.name, check.kind, c_figure, s_figure, verdict, detail, min(p_values) if p_values else None
    )

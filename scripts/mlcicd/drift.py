"""Drift statistics: is the current data distributed like the reference?

With large samples every p-value is tiny, so a feature counts as drifted only when the change is
statistically significant (p < `alpha`) **and** large enough to matter (an effect size at or
above its threshold). Pure functions over profile columns (see profile.py); no I/O.

The tests' distributions are computed here with numpy and `math` rather than scipy.stats, whose
import alone (~0.75 s) cost more than the whole comparison; tests/test_drift.py checks them
against scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcicd.profile import sorted_quantiles

PSI_EPSILON = 1e-4
PSI_BINS = 10


@dataclass(frozen=True)
class Thresholds:
    # 0.01, not 0.05: on 1,000-row samples noise alone moves the Wasserstein distance past
    # 0.1 std with p < 0.05 in ~2 % of identical pairs; at 0.01 it is ~0.3 %.
    alpha: float = 0.01
    min_wasserstein: float = 0.1
    min_psi: float = 0.2
    min_share_change: float = 0.05


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors (zeros smoothed so a new bin is finite)."""
    e = np.clip(expected, PSI_EPSILON, None)
    a = np.clip(actual, PSI_EPSILON, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI over the reference's deciles. Profile samples come sorted, so the deciles are read off
    and the bins counted by searching the edges in the samples (not the samples in the edges):
    with hundreds of columns, np.quantile and binning every value were a third of the comparison."""
    reference, current = _sorted(reference), _sorted(current)
    edges = np.unique(sorted_quantiles(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    # bin j holds edges[j-1] <= v < edges[j]: the values below each edge, differenced
    ref_bins = np.diff(np.searchsorted(reference, edges, side="left"), prepend=0, append=len(reference))
    cur_bins = np.diff(np.searchsorted(current, edges, side="left"), prepend=0, append=len(current))
    return psi(ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum())


def _sorted(values: np.ndarray) -> np.ndarray:
    return values if len(values) < 2 or bool(np.all(values[:-1] <= values[1:])) else np.sort(values)


# --- distributions (checked against scipy.stats in tests/test_drift.py) ----------------------


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _continued_fraction(term: Any, tiny: float = 1e-300, eps: float = 1e-15, limit: int = 10_000) -> float:
    """Modified Lentz evaluation of b0 + a1/(b1 + a2/(b2 + ...)); `term(i)` gives (a_i, b_i), i ≥ 1."""
    f = c = tiny
    d = 0.0
    for i in range(1, limit):
        a, b = term(i)
        d = b + a * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = b + a / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return f


def chi2_sf(x: float, dof: float) -> float:
    """Upper tail of the chi-square distribution: the regularized incomplete gamma Q(dof/2, x/2)."""
    a, x = dof / 2.0, x / 2.0
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # the series for P(a, x) converges fast here
        term = total = 1.0 / a
        k = a
        while abs(term) > abs(total) * 1e-16:
            k += 1
            term *= x / k
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    fraction = _continued_fraction(lambda i: (1.0 if i == 1 else -(i - 1) * (i - 1 - a), x + 2 * i - 1 - a))
    return min(1.0, math.exp(log_front) * fraction)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below the mean; use the symmetry
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)

    def term(i: int) -> tuple[float, float]:
        if i == 1:
            return 1.0, 1.0
        m, odd = divmod(i - 1, 2)
        if odd:  # d_{2m+1}
            return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)), 1.0
        return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), 1.0

    return min(1.0, math.exp(log_front) / a * _continued_fraction(term))


def t_two_sided_p(t: float, dof: float) -> float:
    return _betainc(dof / 2.0, 0.5, dof / (dof + t * t)) if math.isfinite(t) else 0.0


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's limiting distribution of sqrt(n) * D."""
    if x <= 0:
        return 1.0
    if x < 1.0:  # the alternating series converges slowly here; the theta-function form does not
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)) for k in range(1, 8))
        return max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * s)
    return min(
        1.0, 2.0 * sum((1.0 if k % 2 else -1.0) * math.exp(-2.0 * k * k * x * x) for k in range(1, 101))
    )


def ks_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(two-sample Kolmogorov-Smirnov statistic, 1-Wasserstein distance) from one merge of the samples."""
    both = np.concatenate([a, b])
    # profile samples come sorted, and timsort ("stable") merges two sorted runs in linear time
    order = np.argsort(both, kind="stable")
    merged = both[order]
    from_a = order < len(a)
    diff = np.cumsum(from_a) / len(a) - np.cumsum(~from_a) / len(b)
    group_end = np.append(merged[1:] != merged[:-1], True)  # the CDFs at a tied value count all its copies
    diff, merged = diff[group_end], merged[group_end]
    return float(np.max(np.abs(diff))), float(
        (np.abs(diff[:-1]) * np.diff(merged)).sum()
    )  # no BLAS: see profile._add_moments


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """Two-sided p-value of the two-sample KS statistic: Kolmogorov's limit law with Stephens'
    small-sample correction of the argument (accurate to a few percent from ~20 rows a side)."""
    en = n1 * n2 / (n1 + n2)
    root = math.sqrt(en)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def welch_p_value(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[float, float]:
    """(t, two-sided p) of Welch's test of equal means, from the profiles' exact moments."""
    n1, n2 = ref["count"], cur["count"]
    if n1 < 2 or n2 < 2:
        return 0.0, 1.0
    v1, v2 = ref["std"] ** 2 / n1, cur["std"] ** 2 / n2
    diff = cur["mean"] - ref["mean"]
    if v1 + v2 == 0:
        return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    t = diff / math.sqrt(v1 + v2)
    dof = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    return t, t_two_sided_p(t, dof)


# --- comparisons ------------------------------------------------------------------------------


def null_rate_change(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[float, float, float, float]:
    """(reference rate, current rate, change, two-proportion z-test p-value)."""
    n1, n2 = ref["count"] + ref["nulls"], cur["count"] + cur["nulls"]
    p1, p2 = ref["nulls"] / n1 if n1 else 0.0, cur["nulls"] / n2 if n2 else 0.0
    pooled = (ref["nulls"] + cur["nulls"]) / (n1 + n2) if n1 + n2 else 0.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
    p_value = 1.0 if se == 0 else 2 * normal_sf(abs(p2 - p1) / se)
    return p1, p2, p2 - p1, p_value


def compare_numeric(ref: dict[str, Any], cur: dict[str, Any], t: Thresholds) -> dict[str, Any]:
    a, b = ref["sample"], cur["sample"]
    ks_statistic, raw_w = ks_wasserstein(a, b)
    ks_p = ks_p_value(ks_statistic, len(a), len(b))
    welch_t, welch_p = welch_p_value(ref, cur)
    # KS alone has little power against a shift of the mean (a 0.2 std shift at 1,000 rows a side
    # is missed ~1 time in 10); Welch's t is the most powerful test of it. Either may find the
    # change: the smaller p-value, Bonferroni-corrected for the two tests, is the column's p-value.
    p_value = min(1.0, 2 * min(ks_p, welch_p))
    spread = ref["std"]
    if spread > 0:
        wasserstein = raw_w / spread
    else:  # a constant reference: any change at all is infinitely many standard deviations
        wasserstein = 0.0 if raw_w == 0 else math.inf
    value_psi = numeric_psi(a, b)
    result = {
        "test": "ks+welch",
        "statistic": ks_statistic,
        "p_value": p_value,
        "ks_p_value": ks_p,
        "welch_t": welch_t,
        "welch_p_value": welch_p,
        "effect_size": wasserstein,
        "effect_metric": "wasserstein/std",
        "wasserstein": wasserstein,
        "psi": value_psi,
        "reference_mean": ref["mean"],
        "current_mean": cur["mean"],
    }
    reasons = []
    if p_value < t.alpha:
        if wasserstein >= t.min_wasserstein:
            reasons.append(
                f"distribution moved {wasserstein:.2f} reference std (threshold {t.min_wasserstein:g})"
            )
        if value_psi >= t.min_psi:
            reasons.append(f"PSI {value_psi:.3f} (threshold {t.min_psi:g})")
    result["ratio"] = max(wasserstein / t.min_wasserstein, value_psi / t.min_psi)
    return {**result, "reasons": reasons}


def chi2_test(ref_vec: np.ndarray, cur_vec: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on a 2 x k table (no continuity correction)."""
    table = np.vstack([ref_vec, cur_vec])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, len(ref_vec) - 1)


def compare_categorical(ref: dict[str, Any], cur: dict[str, Any], t: Thresholds) -> dict[str, Any]:
    ref_counts: dict[str, int] = ref["counts"]
    cur_counts: dict[str, int] = cur["counts"]
    truncated = bool(ref.get("truncated"))
    new = sorted(set(cur_counts) - set(ref_counts)) if not truncated else []
    categories = list(ref_counts) + [c for c in cur_counts if c not in ref_counts]
    ref_vec = np.array([ref_counts.get(c, 0) for c in categories] + [ref.get("other", 0)], dtype=float)
    cur_vec = np.array([cur_counts.get(c, 0) for c in categories] + [0], dtype=float)
    if truncated:  # categories past the stored top ones are compared as one "other" bucket
        cur_vec[-1] = sum(v for c, v in cur_counts.items() if c not in ref_counts)
        cur_vec[len(ref_counts) : -1] = 0
    keep = (ref_vec + cur_vec) > 0
    ref_vec, cur_vec = ref_vec[keep], cur_vec[keep]
    ref_share, cur_share = ref_vec / ref_vec.sum(), cur_vec / cur_vec.sum()
    if len(ref_vec) > 1:
        chi2, p_value = chi2_test(ref_vec, cur_vec)
    else:
        chi2, p_value = 0.0, 1.0
    share_change = float(np.max(np.abs(cur_share - ref_share)))
    value_psi = psi(ref_share, cur_share)
    new_share = sum(cur_counts[c] for c in new) / max(cur["count"], 1)
    reasons = []
    if p_value < t.alpha:
        if share_change >= t.min_share_change:
            reasons.append(
                f"a category's share moved {share_change * 100:.1f} points (threshold "
                f"{t.min_share_change * 100:g})"
            )
        if value_psi >= t.min_psi:
            reasons.append(f"PSI {value_psi:.3f} (threshold {t.min_psi:g})")
    return {
        "test": "chi2",
        "statistic": chi2,
        "p_value": p_value,
        "effect_size": share_change,
        "effect_metric": "max share change",
        "psi": value_psi,
        "new_categories": new[:20],
        "new_category_share": new_share,
        "ratio": max(share_change / t.min_share_change, value_psi / t.min_psi),
        "reasons": reasons,
    }


def compare_column(
    name: str, ref: dict[str, Any], cur: dict[str, Any] | None, t: Thresholds, role: str = "feature"
) -> dict[str, Any]:
    """Per-column verdict: status OK / DRIFT / MISSING / NEW_CATEGORY, with statistics and severity."""
    base: dict[str, Any] = {"column": name, "role": role, "kind": ref.get("kind")}
    if cur is None:
        return {
            **base,
            "status": "MISSING",
            "severity": "critical",
            "reasons": ["column is in the reference but not in the data"],
        }
    if ref["kind"] != cur["kind"] and cur["kind"] != "empty":
        return {
            **base,
            "status": "DRIFT",
            "severity": "critical",
            "reasons": [f"column was {ref['kind']} in the reference and is {cur['kind']} now"],
        }
    if ref["kind"] == "numeric":
        result = compare_numeric(ref, cur, t)
    else:
        result = compare_categorical(ref, cur, t)
    null_ref, null_cur, null_change, null_p = null_rate_change(ref, cur)
    result.update(null_rate_reference=null_ref, null_rate_current=null_cur)
    if null_p < t.alpha and abs(null_change) >= t.min_share_change:
        result["reasons"].append(f"missing values went from {null_ref:.1%} to {null_cur:.1%}")
        result["ratio"] = max(result["ratio"], abs(null_change) / t.min_share_change)
    status, severity = "OK", "none"
    if result["reasons"]:
        status = "DRIFT"
        severity = "high" if result["ratio"] >= 2 else "medium"
    elif result.get("new_categories"):
        status = "NEW_CATEGORY"
        share = result["new_category_share"]
        severity = "medium" if share >= t.min_share_change else "low"
        result["reasons"].append(
            f"{len(result['new_categories'])} category(ies) never seen in the reference ({share:.1%} of rows)"
        )
    elif result["p_value"] < t.alpha:
        severity = "low"  # significant but below every effect-size threshold: noted, not failed
    return {**base, **result, "status": status, "severity": severity}


def is_failure(feature: dict[str, Any]) -> bool:
    return feature["status"] in ("DRIFT", "MISSING") or (
        feature["status"] == "NEW_CATEGORY" and feature["severity"] == "medium"
    )

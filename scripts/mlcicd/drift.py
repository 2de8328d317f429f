"""Drift statistics: is the current data distributed like the reference?

With large samples every p-value is tiny, so a feature counts as drifted only when the change is
statistically significant (p < `alpha`) **and** large enough to matter (an effect size at or
above its threshold). Pure functions over profile columns (see profile.py); no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    ref_bins = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cur_bins = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    return psi(ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum())


def null_rate_change(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[float, float, float, float]:
    """(reference rate, current rate, change, two-proportion z-test p-value)."""
    from scipy import stats

    n1, n2 = ref["count"] + ref["nulls"], cur["count"] + cur["nulls"]
    p1, p2 = ref["nulls"] / n1 if n1 else 0.0, cur["nulls"] / n2 if n2 else 0.0
    pooled = (ref["nulls"] + cur["nulls"]) / (n1 + n2) if n1 + n2 else 0.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(p2 - p1) / se))
    return p1, p2, p2 - p1, p_value


def compare_numeric(ref: dict[str, Any], cur: dict[str, Any], t: Thresholds) -> dict[str, Any]:
    from scipy import stats

    a, b = ref["sample"], cur["sample"]
    ks = stats.ks_2samp(a, b, method="asymp")
    spread = ref["std"]
    raw_w = float(stats.wasserstein_distance(a, b))
    if spread > 0:
        wasserstein = raw_w / spread
    else:  # a constant reference: any change at all is infinitely many standard deviations
        wasserstein = 0.0 if raw_w == 0 else math.inf
    value_psi = numeric_psi(a, b)
    result = {
        "test": "ks",
        "statistic": float(ks.statistic),
        "p_value": float(ks.pvalue),
        "effect_size": wasserstein,
        "effect_metric": "wasserstein/std",
        "wasserstein": wasserstein,
        "psi": value_psi,
        "reference_mean": ref["mean"],
        "current_mean": cur["mean"],
    }
    reasons = []
    if ks.pvalue < t.alpha:
        if wasserstein >= t.min_wasserstein:
            reasons.append(f"distribution moved {wasserstein:.2f} reference std (threshold {t.min_wasserstein:g})")
        if value_psi >= t.min_psi:
            reasons.append(f"PSI {value_psi:.3f} (threshold {t.min_psi:g})")
    result["ratio"] = max(wasserstein / t.min_wasserstein, value_psi / t.min_psi)
    return {**result, "reasons": reasons}


def compare_categorical(ref: dict[str, Any], cur: dict[str, Any], t: Thresholds) -> dict[str, Any]:
    from scipy import stats

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
        chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([ref_vec, cur_vec]), correction=False)
    else:
        chi2, p_value = 0.0, 1.0
    share_change = float(np.max(np.abs(cur_share - ref_share)))
    value_psi = psi(ref_share, cur_share)
    new_share = sum(cur_counts[c] for c in new) / max(cur["count"], 1)
    reasons = []
    if p_value < t.alpha:
        if share_change >= t.min_share_change:
            reasons.append(f"a category's share moved {share_change * 100:.1f} points (threshold {t.min_share_change * 100:g})")
        if value_psi >= t.min_psi:
            reasons.append(f"PSI {value_psi:.3f} (threshold {t.min_psi:g})")
    return {
        "test": "chi2",
        "statistic": float(chi2),
        "p_value": float(p_value),
        "effect_size": share_change,
        "effect_metric": "max share change",
        "psi": value_psi,
        "new_categories": new[:20],
        "new_category_share": new_share,
        "ratio": max(share_change / t.min_share_change, value_psi / t.min_psi),
        "reasons": reasons,
    }


def compare_column(
    name: str, ref: dict[str, Any] | None, cur: dict[str, Any] | None, t: Thresholds, role: str = "feature"
) -> dict[str, Any]:
    """Per-column verdict: status OK / DRIFT / MISSING / NEW_CATEGORY, with statistics and severity."""
    base: dict[str, Any] = {"column": name, "role": role, "kind": (ref or {}).get("kind")}
    if cur is None:
        return {**base, "status": "MISSING", "severity": "critical", "reasons": ["column is in the reference but not in the data"]}
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
        result["reasons"].append(f"{len(result['new_categories'])} category(ies) never seen in the reference ({share:.1%} of rows)")
    elif result["p_value"] < t.alpha:
        severity = "low"  # significant but below every effect-size threshold: noted, not failed
    return {**base, **result, "status": status, "severity": severity}


def is_failure(feature: dict[str, Any]) -> bool:
    return feature["status"] in ("DRIFT", "MISSING") or (feature["status"] == "NEW_CATEGORY" and feature["severity"] == "medium")

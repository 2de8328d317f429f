"""Output drift between canary and stable: do the two models answer the same population alike?

The serving layer exports a histogram of the model's scores (Prometheus buckets, `le`) or a count per
predicted class, per variant. Over the step's window the canary's distribution is compared with
stable's with the statistics validate-data uses for data drift (mlcicd.drift), effect-size floors
included, because with thousands of answers every difference is significant:

- Pearson's chi-square test of homogeneity on the two rows of counts (bins or classes) for the
  significance, at the rollout's per-test alpha;
- the population stability index (PSI) of the two share vectors, and the largest change of a share:
  for classes a class's share, for ordered score bins the largest gap between the two cumulative
  distributions (the Kolmogorov-Smirnov distance, at the bins' resolution).

A check fails when the difference is significant **and** the PSI reaches `max-psi` (default 0.2) or
the largest change reaches `max-share-change` (default 0.05). Pure functions; numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from mlcicd.check_judge import Outcome, shortage
from mlcicd.checks import Check, Sample
from mlcicd.drift import chi2_test, psi
from mlcicd.judge import FAIL, INCONCLUSIVE, PASS, quantile_from_bins


def _rows(canary: Sample, stable: Sample) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    """Both variants' counts over the union of their bins (or classes), and whether the bins are ordered."""
    if canary.bins is not None and stable.bins is not None:
        bounds = sorted({b for b, _ in canary.bins} | {b for b, _ in stable.bins})
        c, s = dict(canary.bins), dict(stable.bins)
        labels = ["+Inf" if math.isinf(b) else f"{b:g}" for b in bounds]
        return (
            labels,
            np.array([c.get(b, 0.0) for b in bounds]),
            np.array([s.get(b, 0.0) for b in bounds]),
            True,
        )
    c_classes, s_classes = dict(canary.classes or ()), dict(stable.classes or ())
    names = list(s_classes) + [k for k in c_classes if k not in s_classes]
    return (
        names,
        np.array([c_classes.get(k, 0.0) for k in names]),
        np.array([s_classes.get(k, 0.0) for k in names]),
        False,
    )


def _figure(sample: Sample, top: str | None) -> float | None:
    """What the report shows per variant: the median score (bins), or the share of stable's top class."""
    if sample.bins is not None:
        return quantile_from_bins(sample.bins, 0.5)
    classes = dict(sample.classes or ())
    total = sum(classes.values())
    return classes.get(top or "", 0.0) / total if total and top is not None else None


def compare_outputs(
    check: Check, canary: Sample | None, stable: Sample | None, alpha: float, min_count: float
) -> Outcome:
    """One look at a `drift` check: the canary's output distribution against stable's over the same window."""
    short = shortage(check, {"the canary": canary, "stable": stable}, min_count)
    if short or canary is None or stable is None:
        return Outcome(check.name, check.kind, None, None, INCONCLUSIVE, short or "no data")
    if (canary.bins is None) != (stable.bins is None):
        return Outcome(
            check.name, check.kind, None, None, INCONCLUSIVE, "one variant has score bins, the other classes"
        )
    labels, c_counts, s_counts, ordered = _rows(canary, stable)
    keep = (c_counts + s_counts) > 0
    labels = [label for label, k in zip(labels, keep, strict=True) if k]
    c_counts, s_counts = c_counts[keep], s_counts[keep]
    top = labels[int(np.argmax(s_counts))] if not ordered and len(labels) else None
    c_figure, s_figure = _figure(canary, top), _figure(stable, top)
    c_share, s_share = c_counts / c_counts.sum(), s_counts / s_counts.sum()
    statistic, p = chi2_test(s_counts, c_counts) if len(labels) > 1 else (0.0, 1.0)
    if ordered:
        change, what = float(np.max(np.abs(np.cumsum(c_share) - np.cumsum(s_share)))), "largest CDF gap"
    else:
        change, what = float(np.max(np.abs(c_share - s_share))), "largest class-share change"
    value_psi = psi(s_share, c_share) if len(labels) > 1 else 0.0
    large = value_psi >= check.max_psi or change >= check.max_share_change
    failed = p < alpha and large
    shown = (
        f"PSI {value_psi:.3f} (max-psi {check.max_psi:g}), {what} {change * 100:.1f} points "
        f"(max-share-change {check.max_share_change * 100:g}), chi-square p={p:.2g}"
    )
    if ordered:
        shown = (
            f"median score canary {c_figure:.4g} vs stable {s_figure:.4g}; " + shown
            if c_figure is not None and s_figure is not None
            else shown
        )
    elif top is not None and c_figure is not None and s_figure is not None:
        shown = f"class {top!r} canary {c_figure:.1%} vs stable {s_figure:.1%}; " + shown
    statistics = {
        "psi": round(value_psi, 6),
        "share_change": round(change, 6),
        "chi2": round(statistic, 3),
        "p_value": p,
    }
    return Outcome(check.name, check.kind, c_figure, s_figure, FAIL if failed else PASS, shown, p, statistics)

"""Paired significance of a candidate's change over the baseline, on the same test rows.

On 1,000 rows a 0.2-point accuracy gain is two rows, which is nothing to promote on. Accuracy uses
McNemar's test (only the rows where exactly one model is right carry information); every other
metric, not being a sum over rows, uses a paired bootstrap for its interval and a paired
permutation test for its p-value. Pure functions over arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlcicd.gate_table import METRICS
from mlcicd.metrics import (
    MACRO_AVERAGED,
    as_1d,
    auc_batch,
    auc_columns,
    check_lengths,
    r2_batch,
    regression_arrays,
)

TEST_NAMES = {"mcnemar": "McNemar", "bootstrap": "paired permutation"}
"""The test whose p-value a gate shows: a `bootstrap` metric's p-value comes from paired_bootstrap's
permutation test (the bootstrap gives its interval only)."""

MCNEMAR_EXACT_BELOW = 25
"""Below this many discordant rows the chi-square approximation is poor: use the exact binomial test."""
BOOTSTRAP_CHUNK = 200
"""Resamples drawn at once; with BOOTSTRAP_MAX_CELLS it bounds the index matrix (and its gathers)."""
BOOTSTRAP_MAX_CELLS = 4_000_000
"""At most this many row indices per chunk (32 MB of int64), so a million test rows still fit."""
TOLERANCE = 1e-9
"""Relative slack when comparing a change with its threshold, so 0.909 vs 0.9 counts as +1 %."""


def mcnemar(correct_candidate: Any, correct_baseline: Any) -> tuple[float, float, int, int]:
    """(statistic, two-sided p-value, b, c) of McNemar's test on per-row correctness.

    b counts rows only the candidate got right, c rows only the baseline got right; rows both
    got right or wrong say nothing about which is better. Under "equally good" b ~ Bin(b+c, ½):
    with few discordant rows that binomial is tested exactly (statistic = min(b, c)), otherwise
    with the continuity-corrected chi-square (|b−c|−1)²/(b+c).
    """
    cand = np.asarray(correct_candidate, dtype=bool)
    base = np.asarray(correct_baseline, dtype=bool)
    if cand.shape != base.shape or cand.ndim != 1:
        raise ValueError(
            "correct_candidate and correct_baseline must be 1-D and of one length, "
            f"got {cand.shape} and {base.shape}"
        )
    b = int(np.sum(cand & ~base))
    c = int(np.sum(~cand & base))
    discordant = b + c
    if discordant == 0:
        return 0.0, 1.0, b, c
    from scipy import stats

    if discordant < MCNEMAR_EXACT_BELOW:
        statistic = float(min(b, c))
        p_value = float(stats.binomtest(min(b, c), discordant, 0.5).pvalue)
    else:
        statistic = (abs(b - c) - 1) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, 1))
    return statistic, min(p_value, 1.0), b, c


def batch_scorer(
    metric: str | Callable[[Any, Any], float], y_true: np.ndarray, pred: Any, labels: Any
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a (resamples, rows) index matrix to the metric on each resample."""
    if callable(metric):
        p = np.asarray(pred)
        check_lengths(len(y_true), prediction=p)
        return lambda idx: np.array([metric(y_true[row], p[row]) for row in idx], dtype=float)
    if metric in ("rmse", "mae", "r2"):
        t, p = regression_arrays(y_true, pred)
        squared, absolute = (p - t) ** 2, np.abs(p - t)
        if metric == "rmse":
            return lambda idx: np.sqrt(squared[idx].mean(axis=1))
        if metric == "mae":
            return lambda idx: absolute[idx].mean(axis=1)
        return lambda idx: r2_batch(t, squared, idx)
    if metric == "accuracy":
        p = as_1d(pred, "prediction")
        check_lengths(len(y_true), prediction=p)
        correct = (y_true == p).astype(float)
        return lambda idx: correct[idx].mean(axis=1)
    if metric in MACRO_AVERAGED:
        p = as_1d(pred, "prediction")
        check_lengths(len(y_true), prediction=p)
        classes, codes = np.unique(np.concatenate([y_true, p]), return_inverse=True)
        t_codes, p_codes = codes[: len(y_true)], codes[len(y_true) :]
        score = MACRO_AVERAGED[metric]
        return lambda idx: score(t_codes, p_codes, len(classes), idx)
    if metric == "roc_auc":
        classes = np.asarray(labels) if labels is not None else np.unique(y_true)
        columns = auc_columns(y_true, pred, classes)
        return lambda idx: auc_batch(columns, idx)
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)} (or pass a function)")


def paired_bootstrap(
    metric: str | Callable[[Any, Any], float],
    y_true: Any,
    pred_candidate: Any,
    pred_baseline: Any,
    *,
    higher_is_better: bool,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    labels: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Paired comparison of metric(candidate) − metric(baseline) on the same test rows.

    Returns delta (on all rows, candidate minus baseline, not oriented), the (1 − alpha)
    percentile interval of `n_resamples` paired bootstrap deltas, and p_value from a two-sided
    paired permutation test with as many random swaps: each row's two predictions trade models
    with probability ½ (what "neither model is better" means), and p is the share of swapped
    deltas at least as large in size as the observed one, (1 + count) / (1 + swaps). The share of
    bootstrap resamples that are not better is no p-value: resampled deltas centre on the observed
    delta, not on 0, and with it an equal candidate passed alpha 0.05 in 7-10 % of trials for f1
    (docs/benchmarks.md). Two-sided like McNemar's test for accuracy: the gate also requires a
    gain, so an equal candidate passes about alpha/2 of the time.

    Predictions are labels for accuracy/f1, probabilities for roc_auc (columns in `labels` order,
    default sorted y_true labels), numbers for regression, anything a custom metric function
    takes. Built-in metrics are vectorised over a chunk of resamples at a time; a custom function
    is called once per resample and model. Same seed, same answer. Resamples on which the metric
    is undefined (AUC with one class) are dropped.
    """
    if isinstance(metric, str) and metric in METRICS and METRICS[metric].higher_is_better != higher_is_better:
        raise ValueError(
            f"{metric} is {'higher' if METRICS[metric].higher_is_better else 'lower'}-is-better, "
            f"but higher_is_better={higher_is_better}"
        )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    t = as_1d(y_true, "y_true")
    n = len(t)
    score_candidate = batch_scorer(metric, t, pred_candidate, labels)
    score_baseline = batch_scorer(metric, t, pred_baseline, labels)
    whole = np.arange(n)[None, :]
    delta = float(score_candidate(whole)[0] - score_baseline(whole)[0])
    if math.isnan(delta):
        raise ValueError(
            f"{getattr(metric, '__name__', metric)} is undefined on these test rows "
            "(e.g. AUC with a single class)"
        )
    # Rows 0..n-1 hold the candidate's predictions, n..2n-1 the baseline's: a swap is an index.
    score_either = batch_scorer(
        metric,
        np.concatenate([t, t]),
        np.concatenate([np.asarray(pred_candidate), np.asarray(pred_baseline)]),
        labels,
    )
    rng = np.random.default_rng(seed)
    chunk = max(1, min(BOOTSTRAP_CHUNK, BOOTSTRAP_MAX_CELLS // n))
    boot_parts, swap_parts = [], []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        boot_parts.append(score_candidate(idx) - score_baseline(idx))
        swapped = rng.integers(0, 2, size=(size, n)) * n
        rows = np.arange(n)[None, :]
        swap_parts.append(score_either(rows + swapped) - score_either(rows + (n - swapped)))
    deltas = np.concatenate(boot_parts)
    deltas = deltas[~np.isnan(deltas)]
    null_deltas = np.concatenate(swap_parts)
    null_deltas = null_deltas[~np.isnan(null_deltas)]
    if not len(deltas):
        return {"delta": delta, "ci_low": math.nan, "ci_high": math.nan, "p_value": 1.0, "n_resamples": 0}
    ci_low, ci_high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    # the slack keeps a swapped delta equal to the observed one (up to rounding) counted
    as_large = int(np.sum(np.abs(null_deltas) >= abs(delta) * (1 - TOLERANCE)))
    return {
        "delta": delta,
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "p_value": (1 + as_large) / (1 + len(null_deltas)),
        "n_resamples": len(deltas),
    }

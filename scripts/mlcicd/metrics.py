"""Model-quality metrics and the gate decisions built on them: may the candidate replace production?

A candidate is promoted when it clears absolute thresholds (min-accuracy, max-rmse, ...) and beats
the production model by a required margin. Both models are scored on the *same* test rows, so the
comparison is paired and a per-row test can tell a real improvement from noise: on 1,000 rows a
0.2-point accuracy gain is two rows, which is nothing to promote on. Accuracy uses McNemar's test
(only the rows where exactly one model is right carry information); every other metric, not being
a sum over rows, uses a paired bootstrap. Pure functions over arrays; the only side effect is
importing a user's custom metric.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np


class MetricInfo(NamedTuple):
    higher_is_better: bool
    kind: Literal["classification", "regression"]
    paired_test: Literal["mcnemar", "bootstrap"]


METRICS: dict[str, MetricInfo] = {
    # Accuracy is a mean of per-row correctness, so McNemar on the discordant rows is exact and
    # cheap. F1, AUC and the regression scores are not per-row sums: they get the bootstrap.
    "accuracy": MetricInfo(True, "classification", "mcnemar"),
    "f1": MetricInfo(True, "classification", "bootstrap"),
    "roc_auc": MetricInfo(True, "classification", "bootstrap"),
    "rmse": MetricInfo(False, "regression", "bootstrap"),
    "mae": MetricInfo(False, "regression", "bootstrap"),
    "r2": MetricInfo(True, "regression", "bootstrap"),
}

THRESHOLD_OPTIONS: dict[str, str] = {
    "min-accuracy": "accuracy",
    "min-f1": "f1",
    "min-roc-auc": "roc_auc",
    "max-rmse": "rmse",
    "max-mae": "mae",
    "min-r2": "r2",
}

TEST_NAMES = {"mcnemar": "McNemar", "bootstrap": "paired permutation"}
"""The test whose p-value a gate shows: a `bootstrap` metric's p-value comes from paired_bootstrap's
permutation test (the bootstrap gives its interval only)."""

MCNEMAR_EXACT_BELOW = 25
"""Below this many discordant rows the chi-square approximation is poor: use the exact binomial test."""
BOOTSTRAP_CHUNK = 200
"""Resamples drawn at once; with BOOTSTRAP_MAX_CELLS it bounds the index matrix (and its gathers)."""
BOOTSTRAP_MAX_CELLS = 4_000_000
"""At most this many row indices per chunk (32 MB of int64), so a million test rows still fit."""
_TOLERANCE = 1e-9
"""Relative slack when comparing a change with its threshold, so 0.909 vs 0.9 counts as +1 %."""


# --- metrics ------------------------------------------------------------------------------------


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty: metrics need at least one test row")
    return array


def _check_lengths(n: int, **arrays: Any) -> None:
    for name, array in arrays.items():
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} rows but y_true has {n}")


def _macro_f1(t_codes: np.ndarray, p_codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro F1 per resample (rows of `idx`), over the classes present in its y_true ∪ y_pred.

    Per-class counts come from one bincount over (resample, class) pairs, so the cost does not
    grow with the number of classes.
    """
    resamples = len(idx)
    t, p = t_codes[idx], p_codes[idx]
    offsets = np.arange(resamples)[:, None] * k
    size = resamples * k
    true_counts = np.bincount((t + offsets).ravel(), minlength=size).reshape(resamples, k)
    pred_counts = np.bincount((p + offsets).ravel(), minlength=size).reshape(resamples, k)
    hits = t == p
    true_pos = np.bincount((t + offsets)[hits], minlength=size).reshape(resamples, k)
    denom = true_counts + pred_counts  # 2·TP + FP + FN
    present = denom > 0
    f1 = np.divide(2.0 * true_pos, denom, out=np.zeros(denom.shape), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


def _auc_columns(y_true: np.ndarray, proba: Any, classes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(is-positive mask, score) per one-vs-rest problem; one pair in the binary case.

    `classes` is the order of proba's columns (sorted labels unless given): binary scores are
    those of the second class, as in scikit-learn.
    """
    scores = np.asarray(proba, dtype=float)
    if scores.ndim not in (1, 2) or len(scores) != len(y_true):
        raise ValueError(f"proba must have one row per test row (shape ({len(y_true)},) or ({len(y_true)}, classes)), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("proba contains NaN or infinite values")
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if len(unknown):
        raise ValueError(f"y_true has labels {unknown.tolist()[:5]} that are not among the classes {classes.tolist()[:20]}")
    if scores.ndim == 1:
        if len(classes) != 2:
            raise ValueError(f"a 1-D proba is the positive-class score of a binary model, but there are {len(classes)} classes")
        return [(y_true == classes[1], scores)]
    if scores.shape[1] != len(classes):
        raise ValueError(
            f"proba has {scores.shape[1]} columns but there are {len(classes)} classes {classes.tolist()[:20]}; "
            "pass labels= with the model's classes in proba's column order"
        )
    if len(classes) == 2:
        return [(y_true == classes[1], scores[:, 1])]
    return [(y_true == c, scores[:, j]) for j, c in enumerate(classes)]


def _auc_point(columns: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Rank-based (Mann-Whitney) AUC, macro over one-vs-rest columns; NaN if undefined.

    Average ranks give a tied positive/negative pair half credit, exactly as the trapezoidal ROC
    area does. A class absent from y_true has no AUC and is left out of the mean.
    """
    from scipy.stats import rankdata

    values = []
    for positive, scores in columns:
        n_pos = int(positive.sum())
        n_neg = len(positive) - n_pos
        if n_pos and n_neg:
            u = rankdata(scores)[positive].sum() - n_pos * (n_pos + 1) / 2
            values.append(u / (n_pos * n_neg))
    return float(np.mean(values)) if values else math.nan


def _auc_batch(columns: list[tuple[np.ndarray, np.ndarray]], idx: np.ndarray) -> np.ndarray:
    """The same AUC per resample (rows of `idx`), without sorting each resample.

    Rows are grouped once into blocks of equal score, in score order; a resample then only needs
    how many of its positives and negatives fall in each block (one bincount). Each positive
    beats the negatives in lower blocks and ties half of those in its own: the Mann-Whitney U
    with mid-ranks in O(rows) per resample instead of O(rows · log rows), which is what makes
    bootstrapping AUC over 100k rows affordable.
    """
    resamples = len(idx)
    values = []
    for positive, scores in columns:
        _, block = np.unique(scores, return_inverse=True)
        blocks = int(block.max()) + 1
        code = block * 2 + positive  # (block, is positive) as one small integer
        offsets = np.arange(resamples)[:, None] * (2 * blocks)
        tally = np.bincount((code[idx] + offsets).ravel(), minlength=resamples * 2 * blocks)
        tally = tally.reshape(resamples, blocks, 2).astype(float)
        neg, pos = tally[:, :, 0], tally[:, :, 1]
        below = np.cumsum(neg, axis=1) - neg
        u = np.sum(pos * (below + 0.5 * neg), axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        values.append(np.divide(u, pairs, out=np.full(resamples, np.nan), where=pairs > 0))
    stacked = np.vstack(values)
    valid = ~np.isnan(stacked)
    count = valid.sum(axis=0)
    total = np.where(valid, stacked, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(resamples, np.nan), where=count > 0)


def classification_metrics(y_true: Any, y_pred: Any, proba: Any = None, labels: Sequence[Any] | None = None) -> dict[str, float | None]:
    """accuracy, f1 and roc_auc of predicted labels (and, for AUC, predicted probabilities).

    f1 is macro-averaged over the labels present in y_true ∪ y_pred, also for two classes: a gate
    on F1 should not silently depend on which class happens to sort last. roc_auc takes proba as
    the positive-class score (1-D) or one column per class in `labels` order (default: sorted
    labels of y_true ∪ y_pred); with more than two classes it is the one-vs-rest macro average.
    It is None without proba, or when y_true holds a single class (AUC is then undefined).
    """
    t, p = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_lengths(len(t), y_pred=p)
    classes, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
    whole = np.arange(len(t))[None, :]
    result: dict[str, float | None] = {
        "accuracy": float(np.mean(t == p)),
        "f1": float(_macro_f1(codes[: len(t)], codes[len(t) :], len(classes), whole)[0]),
        "roc_auc": None,
    }
    if proba is not None:
        proba_classes = np.asarray(labels) if labels is not None else classes
        auc = _auc_point(_auc_columns(t, proba, proba_classes))
        result["roc_auc"] = None if math.isnan(auc) else auc
    return result


def _regression_arrays(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d(y_true, "y_true").astype(float)
    p = _as_1d(y_pred, "y_pred").astype(float)
    _check_lengths(len(t), y_pred=p)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("regression targets and predictions must be finite numbers (found NaN or infinity)")
    return t, p


def _r2_batch(t: np.ndarray, squared_error: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """R² per resample; a constant y_true scores 1 if predicted exactly, else 0 (as scikit-learn)."""
    ts = t[idx]
    ss_tot = np.sum((ts - ts.mean(axis=1, keepdims=True)) ** 2, axis=1)
    ss_res = squared_error[idx].sum(axis=1)
    fallback = np.where(ss_res == 0, 1.0, 0.0)
    ratio = np.divide(ss_res, ss_tot, out=np.ones(len(idx)), where=ss_tot > 0)
    return np.where(ss_tot > 0, 1.0 - ratio, fallback)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """rmse, mae and r2 of numeric predictions."""
    t, p = _regression_arrays(y_true, y_pred)
    error = p - t
    whole = np.arange(len(t))[None, :]
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(_r2_batch(t, error**2, whole)[0]),
    }


# --- custom metrics -----------------------------------------------------------------------------

_SPEC_HELP = (
    "expected 'module:function' (e.g. 'my_metrics:weighted_f1', or 'path/to/file.py:function'), imported from the working directory"
)


def load_custom_metric(spec: str) -> Callable[[Any, Any], float]:
    """Import a user's `metric(y_true, y_pred) -> float` named as 'module:function'.

    The module is found relative to the working directory (where the workflow checked out the
    repository), the way `python -c 'import module'` would find it there; a path ending in .py
    is loaded from that file. The returned wrapper turns the result into a float so that a
    metric returning, say, a string fails where it is called, not deep inside a gate.
    """
    if not isinstance(spec, str):
        raise ValueError(f"invalid custom metric {spec!r}: {_SPEC_HELP}")
    module_name, sep, function_name = spec.strip().rpartition(":")
    is_file = module_name.endswith(".py")
    if not sep or not function_name.isidentifier() or not module_name:
        raise ValueError(f"invalid custom metric {spec!r}: {_SPEC_HELP}")
    if not is_file and not all(part.isidentifier() for part in module_name.split(".")):
        raise ValueError(f"invalid custom metric {spec!r}: {module_name!r} is not a module name; {_SPEC_HELP}")
    cwd = os.getcwd()
    try:
        module = _import_file(module_name, cwd) if is_file else _import_module(module_name, cwd)
    except Exception as err:  # any error while importing user code is the user's to fix
        raise ValueError(
            f"cannot import custom metric module {module_name!r} (working directory {cwd}): {type(err).__name__}: {err}"
        ) from err
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"custom metric module {module_name!r} has no attribute {function_name!r}")
    if not callable(function):
        raise ValueError(f"custom metric {spec!r} is a {type(function).__name__}, not a function taking (y_true, y_pred)")

    def metric(y_true: Any, y_pred: Any) -> float:
        value = function(y_true, y_pred)
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"custom metric {spec!r} returned {value!r}, not a number") from err

    metric.__name__ = function_name
    metric.__qualname__ = function_name
    metric.__doc__ = function.__doc__
    return metric


def _import_module(name: str, cwd: str) -> Any:
    # The working directory is on sys.path only while importing, so loading a metric does not
    # change what every later import in this process resolves to.
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()  # the file may be newer than the finder's directory listing
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path: str, cwd: str) -> Any:
    file = Path(cwd, path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file {file}")
    name = f"mlcicd_custom_metric_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- significance -------------------------------------------------------------------------------


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
        raise ValueError(f"correct_candidate and correct_baseline must be 1-D and of one length, got {cand.shape} and {base.shape}")
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


def _batch_scorer(
    metric: str | Callable[[Any, Any], float], y_true: np.ndarray, pred: Any, labels: Any
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a (resamples, rows) index matrix to the metric on each resample."""
    if callable(metric):
        p = np.asarray(pred)
        _check_lengths(len(y_true), prediction=p)
        return lambda idx: np.array([metric(y_true[row], p[row]) for row in idx], dtype=float)
    if metric in ("rmse", "mae", "r2"):
        t, p = _regression_arrays(y_true, pred)
        squared, absolute = (p - t) ** 2, np.abs(p - t)
        if metric == "rmse":
            return lambda idx: np.sqrt(squared[idx].mean(axis=1))
        if metric == "mae":
            return lambda idx: absolute[idx].mean(axis=1)
        return lambda idx: _r2_batch(t, squared, idx)
    if metric == "accuracy":
        p = _as_1d(pred, "prediction")
        _check_lengths(len(y_true), prediction=p)
        correct = (y_true == p).astype(float)
        return lambda idx: correct[idx].mean(axis=1)
    if metric == "f1":
        p = _as_1d(pred, "prediction")
        _check_lengths(len(y_true), prediction=p)
        classes, codes = np.unique(np.concatenate([y_true, p]), return_inverse=True)
        t_codes, p_codes = codes[: len(y_true)], codes[len(y_true) :]
        return lambda idx: _macro_f1(t_codes, p_codes, len(classes), idx)
    if metric == "roc_auc":
        classes = np.asarray(labels) if labels is not None else np.unique(y_true)
        columns = _auc_columns(y_true, pred, classes)
        return lambda idx: _auc_batch(columns, idx)
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
            f"{metric} is {'higher' if METRICS[metric].higher_is_better else 'lower'}-is-better, but higher_is_better={higher_is_better}"
        )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    t = _as_1d(y_true, "y_true")
    n = len(t)
    score_candidate = _batch_scorer(metric, t, pred_candidate, labels)
    score_baseline = _batch_scorer(metric, t, pred_baseline, labels)
    whole = np.arange(n)[None, :]
    delta = float(score_candidate(whole)[0] - score_baseline(whole)[0])
    if math.isnan(delta):
        raise ValueError(f"{getattr(metric, '__name__', metric)} is undefined on these test rows (e.g. AUC with a single class)")
    # Rows 0..n-1 hold the candidate's predictions, n..2n-1 the baseline's: a swap is an index.
    score_either = _batch_scorer(
        metric, np.concatenate([t, t]), np.concatenate([np.asarray(pred_candidate), np.asarray(pred_baseline)]), labels
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
    as_large = int(np.sum(np.abs(null_deltas) >= abs(delta) * (1 - _TOLERANCE)))
    return {
        "delta": delta,
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "p_value": (1 + as_large) / (1 + len(null_deltas)),
        "n_resamples": len(deltas),
    }


# --- gates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    gate: str
    candidate: float | None
    baseline: float | None
    delta: float | None
    """candidate − baseline for a comparison; value − threshold for an absolute threshold."""
    threshold: float | None
    """The required change (relative if min_improvement was given, else absolute) or the limit."""
    passed: bool
    detail: str
    p_value: float | None = None
    warning: bool = False
    """A check at level `warn` that found a problem: it passes, and the reports show it as a warning."""


def _higher_is_better(metric: str, override: bool | None) -> bool:
    if override is not None:
        return override
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: pass higher_is_better for a custom metric (known: {', '.join(METRICS)})")
    return METRICS[metric].higher_is_better


def _is_missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with 4 significant digits, or more if 4 would make two different ones look equal."""
    for digits in (4, 6, 9, 12, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb or a == b:
            break
    return sa, sb


def _at_least(value: float, required: float) -> bool:
    return value >= required or math.isclose(value, required, rel_tol=_TOLERANCE, abs_tol=1e-12)


def compare_to_baseline(
    metric: str,
    candidate: float | None,
    baseline: float | None,
    *,
    min_improvement: float | None = None,
    min_absolute_change: float | None = None,
    p_value: float | None = None,
    require_significance: bool = False,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> GateResult:
    """Does the candidate beat the baseline on `metric` by the required margin?

    The improvement is oriented by the metric: for rmse/mae a decrease is an improvement.
    min_improvement is relative to |baseline| (0.01 = 1 %), min_absolute_change is in the
    metric's units; when both are given both must hold, and when neither is, the candidate must
    merely not be worse. A negative value is a tolerance (-0.01: may be up to 1 % worse). With
    require_significance the candidate must also be strictly better with p_value < alpha (from
    the metric's paired test on the same rows). higher_is_better is needed only for a custom
    metric.
    """
    higher = _higher_is_better(metric, higher_is_better)
    test = TEST_NAMES[METRICS[metric].paired_test if metric in METRICS else "bootstrap"]
    gate = f"{metric} vs baseline"
    threshold = min_improvement if min_improvement is not None else min_absolute_change
    if require_significance and p_value is None:
        raise ValueError(f"require_significance needs the p-value of the {test} test for {metric}")
    if _is_missing(candidate) or _is_missing(baseline):
        detail = f"cannot compare {metric}: candidate {candidate}, baseline {baseline}"
        return GateResult(gate, candidate, baseline, None, threshold, False, detail, p_value)
    delta = candidate - baseline
    gain = delta if higher else -delta
    if baseline != 0:
        relative = gain / abs(baseline)
    else:  # any change from a zero baseline is infinitely large relative to it
        relative = 0.0 if gain == 0 else math.copysign(math.inf, gain)
    shown_relative = relative if higher else -relative  # the metric's own direction of change
    cmp, sign = ("≥", 1) if higher else ("≤", -1)

    passed = True
    parts = []
    if min_improvement is not None:
        passed &= _at_least(relative, min_improvement)
        parts.append(f"{shown_relative * 100:+.3g} %, needs {cmp} {sign * min_improvement * 100:+g} %")
    if min_absolute_change is not None:
        passed &= _at_least(gain, min_absolute_change)
        parts.append(f"{delta:+.4g}, needs {cmp} {sign * min_absolute_change:+g}")
    if min_improvement is None and min_absolute_change is None:
        passed &= gain >= 0
        parts.append(f"{shown_relative * 100:+.3g} %, must not be worse")
    shown_candidate, shown_baseline = _fmt_pair(candidate, baseline)
    detail = f"{metric} {shown_candidate} vs {shown_baseline} ({'; '.join(parts)})"

    if p_value is not None:
        p_text = f"{test} p={p_value:.2g}"
        if not require_significance:
            detail += f"; {p_text}"
        elif gain <= 0:
            passed = False
            detail += f"; no improvement to test ({p_text})"
        elif p_value < alpha:
            detail += f"; improvement significant ({p_text} < {alpha:g})"
        else:
            passed = False
            detail += f"; improvement not significant ({p_text} ≥ {alpha:g})"
    return GateResult(gate, candidate, baseline, delta, threshold, bool(passed), detail, p_value)


def threshold_gate(metric: str, value: float | None, threshold: float, *, higher_is_better: bool | None = None) -> GateResult:
    """An absolute limit: min-* passes when value ≥ threshold, max-* when value ≤ threshold.

    `metric` is an option name (min-accuracy, max-rmse, ...) or a metric name, whose direction
    then decides: a higher-is-better metric gets a minimum, an error metric a maximum.
    """
    if metric in THRESHOLD_OPTIONS:
        name, minimum, gate = THRESHOLD_OPTIONS[metric], metric.startswith("min-"), metric
    else:
        name, minimum = metric, _higher_is_better(metric, higher_is_better)
        gate = f"{'min' if minimum else 'max'}-{metric}"
    if _is_missing(value):
        return GateResult(
            gate, value, None, None, threshold, False, f"{name} could not be computed (got {value}), so it cannot meet the limit"
        )
    shown_value, shown_threshold = _fmt_pair(value, threshold)
    if minimum:
        passed = value >= threshold
        detail = f"{name} {shown_value} {'≥' if passed else '<'} minimum {shown_threshold}"
    else:
        passed = value <= threshold
        detail = f"{name} {shown_value} {'≤' if passed else '>'} maximum {shown_threshold}"
    return GateResult(gate, value, None, value - threshold, threshold, passed, detail)


# --- sizes --------------------------------------------------------------------------------------

SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")
_SIZE_HELP = "a non-negative number with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 500MB, 1.5GB, 800KiB or 1024"


def parse_size(text: str | int) -> int:
    """Bytes in a size such as '500MB', '1.5 GiB' or '1024' (units are case-insensitive).

    KB/MB/GB/TB are decimal and KiB/MiB/GiB/TiB binary, as on disk labels and in `ls -h --si`
    versus `ls -h`; 'kb' is taken to mean KB, not kilobits. Arithmetic is exact (Decimal), and a
    fractional byte count is rounded to the nearest byte.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
        return text
    match = _SIZE.fullmatch(text)
    if match is None or match.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
    number, unit = match.group(1), SIZE_UNITS[match.group(2).lower()]
    with localcontext() as context:
        context.prec = len(number) + 20  # enough digits that the product is exact
        # Decimal, not int(): no digit limit, so thousands of digits are a size, not a crash
        return int((Decimal(number) * unit).to_integral_value())

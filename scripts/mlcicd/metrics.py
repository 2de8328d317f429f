"""Model-quality metrics, computed by pure functions over arrays.

A candidate is promoted when it clears absolute thresholds (min-accuracy, max-rmse, ...) and beats
the production model by a required margin (mlcicd.gates); both models are scored on the *same*
test rows, so the comparison is paired and a per-row test can tell a real improvement from noise
(mlcicd.significance). The gates and the metrics they limit are listed in mlcicd.gate_table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# --- metrics ------------------------------------------------------------------------------------


def as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty: metrics need at least one test row")
    return array


def check_lengths(n: int, **arrays: Any) -> None:
    for name, array in arrays.items():
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} rows but y_true has {n}")


def _class_counts(
    t_codes: np.ndarray, p_codes: np.ndarray, k: int, idx: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per resample (rows of `idx`) and class: (true count, predicted count, true positives).

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
    return true_counts, pred_counts, true_pos


def _macro(numerator: np.ndarray, denominator: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean over the classes present in a resample's y_true ∪ y_pred of numerator / denominator (0 where
    the denominator is 0, as scikit-learn's zero_division default)."""
    per_class = np.divide(numerator, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    macro: np.ndarray = per_class.sum(axis=1) / present.sum(axis=1)
    return macro


def macro_f1(t_codes: np.ndarray, p_codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro F1 per resample (rows of `idx`), over the classes present in its y_true ∪ y_pred."""
    true_counts, pred_counts, true_pos = _class_counts(t_codes, p_codes, k, idx)
    denom = true_counts + pred_counts  # 2·TP + FP + FN
    present = denom > 0
    f1 = np.divide(2.0 * true_pos, denom, out=np.zeros(denom.shape), where=present)
    macro: np.ndarray = f1.sum(axis=1) / present.sum(axis=1)
    return macro


def macro_precision(t_codes: np.ndarray, p_codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro precision TP / (TP + FP) per resample, averaged like F1: over the classes in y_true ∪ y_pred,
    also for two classes; a class that is never predicted counts 0."""
    true_counts, pred_counts, true_pos = _class_counts(t_codes, p_codes, k, idx)
    return _macro(true_pos.astype(float), pred_counts, (true_counts + pred_counts) > 0)


def macro_recall(t_codes: np.ndarray, p_codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro recall TP / (TP + FN) per resample, averaged like F1: over the classes in y_true ∪ y_pred,
    also for two classes; a class that is only predicted (not in y_true) counts 0."""
    true_counts, pred_counts, true_pos = _class_counts(t_codes, p_codes, k, idx)
    return _macro(true_pos.astype(float), true_counts, (true_counts + pred_counts) > 0)


MACRO_AVERAGED = {"f1": macro_f1, "precision": macro_precision, "recall": macro_recall}
"""The label metrics computed per class from one set of counts and macro-averaged."""


def auc_columns(y_true: np.ndarray, proba: Any, classes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(is-positive mask, score) per one-vs-rest problem; one pair in the binary case.

    `classes` is the order of proba's columns (sorted labels unless given): binary scores are
    those of the second class, as in scikit-learn.
    """
    scores = np.asarray(proba, dtype=float)
    if scores.ndim not in (1, 2) or len(scores) != len(y_true):
        raise ValueError(
            f"proba must have one row per test row (shape ({len(y_true)},) or ({len(y_true)}, classes)), "
            f"got {scores.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("proba contains NaN or infinite values")
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if len(unknown):
        raise ValueError(
            f"y_true has labels {unknown.tolist()[:5]} that are not among the classes {classes.tolist()[:20]}"
        )
    if scores.ndim == 1:
        if len(classes) != 2:
            raise ValueError(
                "a 1-D proba is the positive-class score of a binary model, "
                f"but there are {len(classes)} classes"
            )
        return [(y_true == classes[1], scores)]
    if scores.shape[1] != len(classes):
        raise ValueError(
            f"proba has {scores.shape[1]} columns but there are {len(classes)} classes "
            f"{classes.tolist()[:20]}; "
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


def auc_batch(columns: list[tuple[np.ndarray, np.ndarray]], idx: np.ndarray) -> np.ndarray:
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
    mean: np.ndarray = np.divide(total, count, out=np.full(resamples, np.nan), where=count > 0)
    return mean


def classification_metrics(
    y_true: Any, y_pred: Any, proba: Any = None, labels: Sequence[Any] | None = None
) -> dict[str, float | None]:
    """accuracy, f1, precision, recall and roc_auc of predicted labels (and, for AUC, predicted
    probabilities).

    f1, precision and recall are macro-averaged over the labels present in y_true ∪ y_pred, also
    for two classes: a gate on F1 should not silently depend on which class happens to sort last.
    roc_auc takes proba as the positive-class score (1-D) or one column per class in `labels` order
    (default: sorted labels of y_true ∪ y_pred); with more than two classes it is the one-vs-rest
    macro average.
    It is None without proba, or when y_true holds a single class (AUC is then undefined).
    """
    t, p = as_1d(y_true, "y_true"), as_1d(y_pred, "y_pred")
    check_lengths(len(t), y_pred=p)
    classes, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
    whole = np.arange(len(t))[None, :]
    result: dict[str, float | None] = {
        "accuracy": float(np.mean(t == p)),
        **{
            name: float(score(codes[: len(t)], codes[len(t) :], len(classes), whole)[0])
            for name, score in MACRO_AVERAGED.items()
        },
        "roc_auc": None,
    }
    if proba is not None:
        proba_classes = np.asarray(labels) if labels is not None else classes
        auc = _auc_point(auc_columns(t, proba, proba_classes))
        result["roc_auc"] = None if math.isnan(auc) else auc
    return result


def regression_arrays(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_1d(y_true, "y_true").astype(float)
    p = as_1d(y_pred, "y_pred").astype(float)
    check_lengths(len(t), y_pred=p)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("regression targets and predictions must be finite numbers (found NaN or infinity)")
    return t, p


def r2_batch(t: np.ndarray, squared_error: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """R² per resample; a constant y_true scores 1 if predicted exactly, else 0 (as scikit-learn)."""
    ts = t[idx]
    ss_tot = np.sum((ts - ts.mean(axis=1, keepdims=True)) ** 2, axis=1)
    ss_res = squared_error[idx].sum(axis=1)
    fallback = np.where(ss_res == 0, 1.0, 0.0)
    ratio = np.divide(ss_res, ss_tot, out=np.ones(len(idx)), where=ss_tot > 0)
    return np.where(ss_tot > 0, 1.0 - ratio, fallback)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """rmse, mae and r2 of numeric predictions."""
    t, p = regression_arrays(y_true, y_pred)
    error = p - t
    whole = np.arange(len(t))[None, :]
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(r2_batch(t, error**2, whole)[0]),
    }

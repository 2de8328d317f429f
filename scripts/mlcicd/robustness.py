"""Robustness probes: does the model stay finite, deterministic and varied on bad or odd input?

A model error fails its probe and never escapes: the gates report every probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlcicd import model_input
from mlcicd.errors import UsageError
from mlcicd.model_loading import LoadedModel, check_sample, first_line

Task = Literal["classification", "regression"]
Missing = Literal["reject", "handle"]

PROBE_ROWS = 32
"""Rows in the all-zeros, extreme-value and missing-value probes: enough to cover row-dependent code
paths, cheap on any model."""
EXTREME = model_input.EXTREME


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _non_finite(out: np.ndarray) -> int:
    """How many output values are NaN or ±inf (missing, for non-numeric outputs such as string labels)."""
    out = np.asarray(out)
    if out.dtype.kind in "biu":
        return 0
    if out.dtype.kind in "fc":
        return int(np.count_nonzero(~np.isfinite(out)))
    import pandas as pd

    return int(np.count_nonzero(pd.isna(out)))


def predicted_labels(out: np.ndarray) -> np.ndarray:
    """Class labels from a classifier's output: argmax of a 2-D score matrix, the values themselves when
    they are integer-like, else a single probability column thresholded at 0.5."""
    out = np.asarray(out)
    if out.ndim == 2 and out.shape[1] > 1:
        labels: np.ndarray = np.argmax(out, axis=1)
        return labels
    flat = out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out
    if flat.dtype.kind not in "fc":
        return flat  # integer or string labels already
    if np.all(np.isfinite(flat)) and np.allclose(flat, np.round(flat)):
        return np.round(flat).astype(np.int64)
    return (flat >= 0.5).astype(np.int64)


def _finite_check(name: str, model: LoadedModel, x: Any, what: str) -> Check:
    try:
        out = model.predict(x)
    # a model that crashes on this input fails the check, the gate goes on
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"{what}: the model raised {first_line(exc)}")
    bad = _non_finite(out)
    if bad:
        return Check(name, False, f"{what}: {bad} of {np.asarray(out).size} outputs are NaN or infinite")
    return Check(name, True, f"{what}: all {np.asarray(out).size} outputs finite")


def check_zeros(model: LoadedModel, sample: Any) -> Check:
    width = max(model_input.numeric_width(sample), 1)
    x = model_input.with_numbers(sample, np.zeros((min(len(sample), PROBE_ROWS), width)))
    return _finite_check("zeros input", model, x, f"{len(x)} rows of all-zero numeric features")


def check_extremes(model: LoadedModel, sample: Any) -> Check:
    width = max(model_input.numeric_width(sample), 1)
    alternating = np.where(np.arange(width) % 2 == 0, EXTREME, -EXTREME)
    x = model_input.with_numbers(
        sample, np.stack([np.full(width, EXTREME), np.full(width, -EXTREME), alternating, -alternating])
    )
    return _finite_check("extreme values", model, x, f"rows of ±{EXTREME:g}")


def check_determinism(model: LoadedModel, sample: Any) -> Check:
    name = "determinism"
    try:
        first, second = np.asarray(model.predict(sample)), np.asarray(model.predict(sample))
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"the model raised {first_line(exc)}")
    if first.shape != second.shape:
        return Check(name, False, f"output shapes differ between two calls: {first.shape} vs {second.shape}")
    how = ""
    if first.dtype.kind in "biuf" and second.dtype.kind in "biuf":
        same = bool(np.allclose(first, second, equal_nan=True))
        if not same:
            diffs = np.abs(first.astype(float) - second.astype(float))
            finite = diffs[np.isfinite(diffs)]
            how = (
                f" (largest difference {finite.max():.3g})"
                if finite.size and finite.max() > 0
                else " (NaN or inf in one call only)"
            )
    else:
        same = bool(np.array_equal(first, second))
    if same:
        return Check(name, True, f"the same {len(sample)} rows twice gave the same outputs")
    return Check(name, False, f"the same {len(sample)} rows twice gave different outputs{how}")


def check_class_collapse(model: LoadedModel, sample: Any, y_true: np.ndarray) -> Check:
    name = "class collapse"
    try:
        labels = predicted_labels(model.predict(sample))
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"the model raised {first_line(exc)}")
    classes = np.unique(np.asarray(y_true))
    seen = np.unique(labels)
    numeric_classes, numeric_seen = classes.dtype.kind in "biuf", seen.dtype.kind in "biuf"
    if numeric_classes and numeric_seen:
        never = [c.item() for c in classes if not np.any(np.isclose(seen.astype(float), float(c)))]
    elif not numeric_classes and not numeric_seen:
        never = sorted(set(map(str, classes)) - set(map(str, seen)))
    else:
        # string labels in y_true against class indices from the model: only the count can be compared
        never = [] if len(seen) >= len(classes) else [f"{len(classes) - len(seen)} of {classes.tolist()}"]
    shown = seen.tolist()[:10]
    if never:
        return Check(
            name,
            False,
            f"on {len(sample)} rows the model predicts only {shown}; never {never} "
            f"(y_true has {classes.tolist()[:10]})",
        )
    return Check(name, True, f"the predictions cover all {len(classes)} classes of y_true")


def check_missing(model: LoadedModel, sample: Any, missing: Missing) -> Check:
    """`handle`: NaN cells must give finite outputs. `reject`: raising is a clear rejection and passes, and so
    do finite outputs; NaN outputs fail, because a caller would get NaN scores without any error."""
    name = "missing values"
    x, cells = model_input.with_missing(sample, PROBE_ROWS)
    what = f"{cells} rows with a NaN cell"
    try:
        out = model.predict(x)
    except Exception as exc:  # noqa: BLE001
        if missing == "reject":
            return Check(name, True, f"{what}: rejected with {first_line(exc)}")
        return Check(
            name, False, f"{what}: the model raised {first_line(exc)} (missing=handle: it must impute)"
        )
    bad = _non_finite(out)
    if bad:
        hint = "neither rejected nor handled" if missing == "reject" else "not handled"
        return Check(
            name, False, f"{what}: {bad} of {np.asarray(out).size} outputs are NaN or infinite ({hint})"
        )
    return Check(name, True, f"{what}: all outputs finite")


PROBES = ("zeros input", "extreme values", "determinism", "class collapse", "missing values")
"""The robustness probes, by the name their checks carry."""


def check_robustness(
    model: LoadedModel,
    sample: Any,
    y_true: np.ndarray | None,
    task: Task,
    missing: Missing = "reject",
    probes: Sequence[str] = PROBES,
) -> list[Check]:
    """Zeros input, ±1e6 inputs, determinism, missing values and (for a classifier with labels) class
    collapse, each when named in `probes`. A model error fails its check and never escapes; only bad
    arguments raise UsageError. `sample` is an array or a DataFrame: the probes change its numeric
    features and keep its other columns.

    The class-collapse check needs `y_true` (the classes the sample contains) and is left out without it.
    """
    if task not in ("classification", "regression"):
        raise UsageError("bad task", f"task must be `classification` or `regression`, got `{task}`.")
    if missing not in ("reject", "handle"):
        raise UsageError(
            "bad missing-value policy", f"missing must be `reject` or `handle`, got `{missing}`."
        )
    sample = check_sample(sample)
    checks = []
    if "zeros input" in probes:
        checks.append(check_zeros(model, sample))
    if "extreme values" in probes:
        checks.append(check_extremes(model, sample))
    if "determinism" in probes:
        checks.append(check_determinism(model, sample))
    if task == "classification" and y_true is not None and "class collapse" in probes:
        if len(np.asarray(y_true)) == 0:
            raise UsageError(
                "bad labels",
                "y_true is empty: pass the labels of the sample rows, or None to skip the class-collapse "
                "check.",
            )
        checks.append(check_class_collapse(model, sample, y_true))
    if "missing values" in probes:
        checks.append(check_missing(model, sample, missing))
    return checks

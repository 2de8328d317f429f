"""The gate decisions on metrics: an absolute limit, and the comparison with the baseline.

A candidate is promoted when it clears the absolute thresholds of mlcicd.gate_table.THRESHOLDS
(min-accuracy, max-rmse, ...) and beats the production model by a required margin, with the p-value
of the metric's paired test on the same rows (mlcicd.significance). Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlcicd.gate_table import METRICS, THRESHOLDS, Threshold
from mlcicd.significance import TEST_NAMES, TOLERANCE

THRESHOLD_BY_OPTION: dict[str, Threshold] = {row.option: row for row in THRESHOLDS}


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
        raise ValueError(
            f"unknown metric {metric!r}: pass higher_is_better for a custom metric "
            f"(known: {', '.join(METRICS)})"
        )
    return METRICS[metric].higher_is_better


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with 4 significant digits, or more if 4 would make two different ones look equal."""
    for digits in (4, 6, 9, 12, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb or a == b:
            break
    return sa, sb


def _at_least(value: float, required: float) -> bool:
    return value >= required or math.isclose(value, required, rel_tol=TOLERANCE, abs_tol=1e-12)


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
    if candidate is None or baseline is None or math.isnan(candidate) or math.isnan(baseline):
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


def threshold_gate(
    metric: str, value: float | None, threshold: float, *, higher_is_better: bool | None = None
) -> GateResult:
    """An absolute limit: min-* passes when value ≥ threshold, max-* when value ≤ threshold.

    `metric` is an option name of THRESHOLDS (min-accuracy, max-rmse, ...), which then names the gate,
    or a metric name, whose direction then decides: a higher-is-better metric gets a minimum, an error
    metric a maximum. check-gates names its gates by the table (`row_gate`).
    """
    row = THRESHOLD_BY_OPTION.get(metric)
    if row is not None:
        return limit_gate(metric, row.metric, row.direction == "min", value, threshold)
    minimum = _higher_is_better(metric, higher_is_better)
    return limit_gate(f"{'min' if minimum else 'max'}-{metric}", metric, minimum, value, threshold)


def row_gate(row: Threshold, value: float | None, threshold: float) -> GateResult:
    """The gate of one THRESHOLDS row, under the row's gate name."""
    return limit_gate(row.gate, row.metric, row.direction == "min", value, threshold)


def limit_gate(gate: str, name: str, minimum: bool, value: float | None, threshold: float) -> GateResult:
    """`gate` passes when the metric `name`'s value is at least (`minimum`) or at most `threshold`."""
    if value is None or math.isnan(value):
        return GateResult(
            gate,
            value,
            None,
            None,
            threshold,
            False,
            f"{name} could not be computed (got {value}), so it cannot meet the limit",
        )
    shown_value, shown_threshold = _fmt_pair(value, threshold)
    if minimum:
        passed = value >= threshold
        detail = f"{name} {shown_value} {'≥' if passed else '<'} minimum {shown_threshold}"
    else:
        passed = value <= threshold
        detail = f"{name} {shown_value} {'≤' if passed else '>'} maximum {shown_threshold}"
    return GateResult(gate, value, None, value - threshold, threshold, passed, detail)

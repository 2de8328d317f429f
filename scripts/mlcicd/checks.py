"""Custom canary checks (`metrics.checks`): business metrics and the models' own answers, per variant.

Each check names a figure the serving layer exports, read for both variants over the step's window
(a PromQL query, or a field of the http metrics document), and how to judge it:

- `kind`: `rate` (a count over a count, e.g. conversions per request), `mean` (a sum over a count),
  `histogram` (a quantile of bucket counts) or `drift` (the distribution of scores or classes);
- `better`: `higher` or `lower` (not for drift);
- `tolerance` (with `tolerance-type` relative or absolute) against stable, and/or an absolute `limit`.

A query or field without `{variant}` is *pairwise*: one figure for the pair, such as the share of
mirrored requests on which the two models agreed in `shadow`; it is judged against its `limit`.

This module holds the settings (parsed strictly: unknown keys are errors) and the figures; the
decisions are in mlcicd.check_judge, the reading in mlcicd.check_sources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlcicd.config import closest, shown

KINDS = ("rate", "mean", "histogram", "drift")
DIRECTIONS = ("higher", "lower")
TOLERANCE_TYPES = ("relative", "absolute")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_CHECKS = 20
DEFAULT_MAX_PSI = 0.2
"""As validate-data's drift thresholds (mlcicd.drift.Thresholds.min_psi)."""
DEFAULT_MAX_SHARE_CHANGE = 0.05
"""As drift.Thresholds.min_share_change: a class's share, or the score CDF, moved 5 points."""
COMMON_KEYS = {"name", "kind", "min-count"}
KIND_KEYS = {
    "rate": {"denominator", "better", "tolerance", "tolerance-type", "limit"},
    "mean": {"denominator", "squares", "better", "tolerance", "tolerance-type", "limit"},
    "histogram": {"quantile", "better", "tolerance", "tolerance-type", "limit"},
    "drift": {"label", "max-psi", "max-share-change"},
}
SOURCE_KEY = {"prometheus": "query", "http": "field"}
CHECKS_EXAMPLE = (
    "{name: conversion, kind: rate, "
    "query: 'sum(increase(conversions_total{variant=\"{variant}\"}[{window}]))', "
    "denominator: 'sum(increase(http_requests_total{variant=\"{variant}\"}[{window}]))', "
    "better: higher, tolerance: 0.02}"
)


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    source: str
    """The PromQL query, or the http document's field path (`{variant}.conversions`, `shadow.agreements`)."""
    denominator: str = ""
    squares: str = ""
    better: str = ""
    tolerance: float | None = None
    tolerance_type: str = "relative"
    limit: float | None = None
    quantile: float = 0.5
    label: str = "le"
    max_psi: float = DEFAULT_MAX_PSI
    max_share_change: float = DEFAULT_MAX_SHARE_CHANGE
    min_count: float | None = None
    """Observations (the denominator, or the histogram's total) each side needs; default min-requests."""

    @property
    def pairwise(self) -> bool:
        return "{variant}" not in self.source

    @property
    def tests(self) -> int:
        """Statistical tests this check runs per judged check: against stable and against the limit."""
        return int(self.tolerance is not None) + int(self.limit is not None) if self.kind != "drift" else 1

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in ("", None)}


@dataclass(frozen=True)
class Sample:
    """What one variant (or the pair) did over the window for one check; None = the source had no answer."""

    value: float | None = None
    """rate: the events; mean: the sum of the values."""
    count: float | None = None
    """rate: the trials; mean: how many values; histogram/drift: the total in the bins."""
    squares: float | None = None
    bins: tuple[tuple[float, float], ...] | None = None
    """histogram, or drift over ordered bins: (upper bound, count in the bin), ascending;
    the last bound may be inf."""
    classes: tuple[tuple[str, float], ...] | None = None
    """drift over classes: (class, count)."""

    @property
    def missing(self) -> bool:
        return self.count is None and self.bins is None and self.classes is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "count": self.count}
        if self.squares is not None:
            out["squares"] = self.squares
        if self.bins is not None:
            out["bins"] = [["+Inf" if math.isinf(b) else b, c] for b, c in self.bins]
        if self.classes is not None:
            out["classes"] = dict(self.classes)
        return out


# --- the `metrics.checks` setting -------------------------------------------------------------------


def _number(where: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"`{where}` is {shown(value)}, not a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{where}` is {shown(value)}, not a number") from None
    if not math.isfinite(result) or not low <= result <= high:
        span = (
            ""
            if low <= -1e300
            else f" at least {low:g}"
            if high >= 1e12
            else f" between {low:g} and {high:g}"
        )
        raise ValueError(f"`{where}` is {shown(value)}; give a finite number{span}")
    return result


def _word(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    word = str(value).strip().lower() if isinstance(value, str) else ""
    if word not in allowed:
        raise ValueError(f"`{where}` is {shown(value)}; use one of: {', '.join(allowed)}")
    return word


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{where}` must be a non-empty string, not {shown(value)}")
    return value.strip()


def parse_check(item: Any, index: int, source_type: str) -> Check:
    """One entry of `metrics.checks`; ValueError names the key and the fix."""
    at = f"metrics.checks[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"`{at}` must be a mapping, e.g. {CHECKS_EXAMPLE}")
    spec = {str(k): v for k, v in item.items()}
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(
            f"`{at}.name` is {shown(name)}; give a short name of letters, digits, `-`, `_` or `.`"
        )
    at = f"metrics.checks.{name}"
    kind = _word(f"{at}.kind", spec.get("kind"), KINDS)
    key = SOURCE_KEY[source_type]
    allowed = COMMON_KEYS | KIND_KEYS[kind] | {key}
    for found in spec:
        if found not in allowed:
            other = next((k for k, v in KIND_KEYS.items() if found in v), None)
            if found in SOURCE_KEY.values():
                hint = f" (the {source_type} metrics source reads `{key}`)"
            elif other:
                hint = f" (a setting of kind {other} checks)"
            else:
                hint = closest(found, sorted(allowed))
            valid = ", ".join(sorted(allowed))
            raise ValueError(f"`{at}.{found}` is not a setting of a {kind} check{hint}; valid: {valid}")
    if key not in spec:
        raise ValueError(f"`{at}` needs `{key}` (with `{{variant}}` for a figure per variant)")
    fields: dict[str, Any] = {"name": name, "kind": kind, "source": _text(f"{at}.{key}", spec[key])}
    for option in ("denominator", "squares", "label"):
        if option in spec:
            fields[option] = _text(f"{at}.{option}", spec[option])
    if kind in ("rate", "mean") and "denominator" not in fields:
        raise ValueError(f"`{at}` needs `denominator`: the count the {kind} is taken over (e.g. requests)")
    if kind != "drift":
        if "better" not in spec:
            raise ValueError(f"`{at}` needs `better: higher` or `better: lower`")
        fields["better"] = _word(f"{at}.better", spec["better"], DIRECTIONS)
        if "tolerance" in spec:
            fields["tolerance"] = _number(f"{at}.tolerance", spec["tolerance"], low=0.0, high=1e12)
        if "tolerance-type" in spec:
            fields["tolerance_type"] = _word(f"{at}.tolerance-type", spec["tolerance-type"], TOLERANCE_TYPES)
        if "limit" in spec:
            fields["limit"] = _number(f"{at}.limit", spec["limit"], low=-1e300, high=1e300)
    if "quantile" in spec:
        fields["quantile"] = _number(f"{at}.quantile", spec["quantile"], low=0.001, high=0.999)
    for option, attribute in (("max-psi", "max_psi"), ("max-share-change", "max_share_change")):
        if option in spec:
            fields[attribute] = _number(f"{at}.{option}", spec[option], low=0.0, high=1e6)
    if "min-count" in spec:
        fields["min_count"] = _number(f"{at}.min-count", spec["min-count"], low=0.0, high=1e15)
    check = Check(**fields)
    _check_consistency(check, at, key)
    return check


def _check_consistency(check: Check, at: str, key: str) -> None:
    if check.kind == "drift":
        if check.pairwise:
            raise ValueError(
                f"`{at}.{key}` must contain `{{variant}}`: drift compares the canary's outputs with stable's"
            )
        return
    if check.pairwise and check.tolerance is not None:
        raise ValueError(
            f"`{at}`: `{key}` has no `{{variant}}`, so it is one figure for the pair, "
            "with no stable figure to "
            "compare against: give `limit` instead of `tolerance`"
        )
    if check.tolerance is None and check.limit is None:
        raise ValueError(f"`{at}` needs `tolerance` (against stable) or `limit` (an absolute bound), or both")
    for extra in ("denominator", "squares"):
        text = getattr(check, extra)
        if text and ("{variant}" in text) != ("{variant}" in check.source):
            raise ValueError(f"`{at}.{extra}` and `{at}.{key}` must both contain `{{variant}}`, or neither")


def parse_checks(value: Any, source_type: str) -> tuple[Check, ...]:
    """`metrics.checks`: a list of check mappings (see the module docstring)."""
    if value is None or value == []:
        return ()
    if isinstance(value, tuple) and all(isinstance(c, Check) for c in value):
        return value  # already parsed
    if not isinstance(value, list):
        raise ValueError(f"`metrics.checks` must be a list of checks, e.g. [{CHECKS_EXAMPLE}]")
    if len(value) > MAX_CHECKS:
        raise ValueError(f"`metrics.checks` has {len(value)} checks; at most {MAX_CHECKS} are judged")
    checks = tuple(parse_check(item, i, source_type) for i, item in enumerate(value))
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise ValueError(f"`metrics.checks`: two checks are named `{check.name}`; rename one")
        seen.add(check.name)
    return checks


def check_tests(checks: tuple[Check, ...] | list[Check]) -> int:
    """How many tests the checks add to each judged check (for the rollout's alpha budget)."""
    return sum(c.tests for c in checks)


def checks_of(metrics: Mapping[str, Any]) -> tuple[Check, ...]:
    found = metrics.get("checks") if metrics else None
    return tuple(found) if isinstance(found, (list, tuple)) else ()

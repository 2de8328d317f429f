"""Read the custom checks' figures (mlcicd.checks) from the rollout's metrics source, and judge them.

- `prometheus`: each check's `query` (and `denominator`, `squares`) is an instant query with the same
  `{variant}` and `{window}` placeholders as the built-in ones. A histogram or a score-bin drift query
  returns one series per `le` (cumulative counts, as `sum by (le) (increase(x_bucket[…]))`); a class
  drift query one series per value of its `label` (`sum by (class) (increase(x_total[…]))`).
- `http`: `field` is a dotted path into the metrics document the source already fetches
  (`GET {address}?window=<seconds>`): `{variant}.conversions`, or without `{variant}` a figure of the
  pair such as `shadow.agreements`. A histogram field is `[[le, cumulative], …, ["+Inf", total]]`; a
  class field an object `{"class": count}`.

A source that is down or answers nothing for a check leaves it INCONCLUSIVE, never passed.
"""

from __future__ import annotations

import math
from typing import Any

from mlcicd.check_judge import JUDGE, Outcome, judge_check
from mlcicd.checks import Check, Sample
from mlcicd.judge import INCONCLUSIVE, Finding, Verdict, bins_from_cumulative, combine
from mlcicd.metric_sources import HttpSource, MetricsError, PrometheusSource, QueryError, finite_number

PAIR = "pair"
"""The key of a pairwise check's one sample."""


def render(text: str, variant: str, window_s: float) -> str:
    return text.replace("{variant}", variant).replace("{window}", f"{max(1, math.ceil(window_s))}s")


def _bins(pairs: list[tuple[float, float]]) -> tuple[tuple[float, float], ...] | None:
    return bins_from_cumulative(pairs) if pairs else None


def _prometheus_sample(source: PrometheusSource, check: Check, variant: str, window_s: float) -> Sample:
    def value(text: str) -> float | None:
        if not text:
            return None
        found = [
            finite_number((s.get("value") or [None, None])[1])
            for s in source.query(render(text, variant, window_s))
        ]
        numbers = [v for v in found if v is not None]
        return sum(numbers) if numbers else None

    if check.kind in ("rate", "mean"):
        return Sample(value(check.source), value(check.denominator), value(check.squares))
    series = source.query(render(check.source, variant, window_s))
    label = "le" if check.kind == "histogram" else check.label
    pairs: list[tuple[float, float]] = []
    classes: dict[str, float] = {}
    for s in series:
        key = (s.get("metric") or {}).get(label)
        count = finite_number((s.get("value") or [None, None])[1])
        if key is None or count is None:
            continue
        if label == "le":
            bound = math.inf if key == "+Inf" else finite_number(key)
            if bound is not None:
                pairs.append((bound, count))
        else:
            classes[str(key)] = classes.get(str(key), 0.0) + count
    if label == "le":
        bins = _bins(pairs)
        return Sample(count=sum(c for _, c in bins) if bins else None, bins=bins)
    return Sample(
        count=sum(classes.values()) if classes else None, classes=tuple(classes.items()) if classes else None
    )


def _field(document: Any, path: str, variant: str) -> Any:
    for part in path.replace("{variant}", variant).split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def _http_sample(document: dict[str, Any], check: Check, variant: str) -> Sample:
    if check.kind in ("rate", "mean"):
        value, count, squares = (
            finite_number(_field(document, p, variant)) if p else None
            for p in (check.source, check.denominator, check.squares)
        )
        return Sample(value, count, squares)
    found = _field(document, check.source, variant)
    if isinstance(found, dict) and check.kind == "drift":
        classes = {str(k): n for k, v in found.items() if (n := finite_number(v)) is not None}
        return Sample(
            count=sum(classes.values()) if classes else None,
            classes=tuple(classes.items()) if classes else None,
        )
    pairs = []
    for pair in found if isinstance(found, list) else []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            bound = math.inf if pair[0] in ("+Inf", "inf", None) else finite_number(pair[0])
            count = finite_number(pair[1])
            if bound is not None and count is not None:
                pairs.append((bound, count))
    bins = _bins(pairs)
    return Sample(count=sum(c for _, c in bins) if bins else None, bins=bins)


def read_samples(
    source: PrometheusSource | HttpSource, checks: tuple[Check, ...], variants: list[str], window_s: float
) -> dict[str, dict[str, Sample]]:
    """Every check's sample per variant (`pair` for a pairwise check); MetricsError, QueryError raise."""
    out: dict[str, dict[str, Sample]] = {}
    document = source.fetch(window_s) if isinstance(source, HttpSource) and checks else {}
    for check in checks:
        names = [PAIR] if check.pairwise else variants
        if isinstance(source, HttpSource):
            out[check.name] = {v: _http_sample(document, check, v) for v in names}
        else:
            out[check.name] = {v: _prometheus_sample(source, check, v, window_s) for v in names}
    return out


class CustomChecks:
    """The rollout's custom checks: read, judge, and fold into a step's verdict."""

    def __init__(
        self, checks: tuple[Check, ...], source: Any, stable: str, canary: str, alpha: float, min_count: float
    ) -> None:
        self.checks, self.source, self.stable, self.canary = checks, source, stable, canary
        self.alpha, self.min_count = alpha, min_count

    def look(self, window_s: float, *, mirrored: bool) -> list[Outcome]:
        """Every check over the window. Pairwise checks (the answers to mirrored requests compared) only
        while traffic is mirrored."""
        checks = tuple(c for c in self.checks if mirrored or not c.pairwise)
        if not checks:
            return []
        try:
            samples = read_samples(self.source, checks, [self.stable, self.canary], window_s)
        except (MetricsError, QueryError) as exc:
            why = f"{self.source.describe()} gave no answer: {exc}"
            return [Outcome(c.name, c.kind, None, None, INCONCLUSIVE, why) for c in checks]
        from mlcicd.output_compare import compare_outputs  # numpy: imported when a rollout has checks

        outcomes = []
        for check in checks:
            found = samples[check.name]
            canary, stable = (
                (found[PAIR], None) if check.pairwise else (found[self.canary], found[self.stable])
            )
            judged = compare_outputs if check.kind == "drift" else judge_check
            outcomes.append(judged(check, canary, stable, self.alpha, self.min_count))
        return outcomes

    @staticmethod
    def fold(verdict: Verdict, outcomes: list[Outcome], *, pending: bool = False) -> Verdict:
        """The step's verdict with the checks' findings added (a failure fails; no data is inconclusive)."""
        if not outcomes:
            return verdict
        return combine(verdict.findings + [o.finding(pending=pending) for o in outcomes])


def only_core(findings: list[Finding]) -> list[Finding]:
    """The built-in judges' findings, without the custom checks'."""
    return [f for f in findings if f.judge != JUDGE]

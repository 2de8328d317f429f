"""Where canary-shift reads what each variant did: Prometheus, or a JSON endpoint.

- `prometheus`: instant queries against `/api/v1/query`. Templates with two placeholders:
  `{variant}` (the router's name of the server: `stable`, `canary`) and `{window}` (the time since
  the step started, e.g. `90s`). Defaults follow the usual HTTP server conventions; override any
  of them, as with Flagger's metric templates.
- `http`: `GET {address}?window=<seconds>` returning, per variant name,
  `{"requests": n, "errors": n, "latency_p99_ms": x, "latency_buckets_ms": [[le, cumulative], …]}`.

A source that is down, slow or empty yields Figures with None, which the judge reads as
INCONCLUSIVE: never a pass on no data. Only a malformed query (HTTP 400 from Prometheus) or a
wrong address at the preflight is a usage error.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from mlcicd.judge import Figures, bins_from_cumulative
from mlcicd.routers import parse_spec, request_json

METRICS_TYPES = ("prometheus", "http")
TOKEN_ENV = "MLCICD_METRICS_TOKEN"
DEFAULT_QUERIES = {
    "requests": 'sum(increase(http_requests_total{variant="{variant}"}[{window}]))',
    "errors": 'sum(increase(http_requests_total{variant="{variant}",code=~"5.."}[{window}]))',
    "latency-p99": "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{variant="{variant}"}[{window}])))',
    "latency-buckets": "sum by (le) "
    '(increase(http_request_duration_seconds_bucket{variant="{variant}"}[{window}]))',
}
METRICS_KEYS = {
    "prometheus": {"type", "address", "queries", "latency-unit", "timeout", "checks"},
    "http": {"type", "address", "timeout", "checks"},
}
METRICS_EXAMPLE = "{type: prometheus, address: http://prometheus:9090}"


class MetricsError(Exception):
    """The source is unreachable or answered something that is not metrics."""


class QueryError(Exception):
    """The source rejected a query as malformed: the user's config, not a transient fault."""


def metrics_spec(value: Any) -> dict[str, Any]:
    spec = parse_spec(value, METRICS_KEYS, {"prometheus": ("address",), "http": ("address",)}, "metrics")
    if not spec:
        return spec
    from mlcicd.checks import parse_checks  # custom checks (business metrics, output drift, shadow answers)

    spec["checks"] = parse_checks(spec.get("checks"), spec["type"])
    if not str(spec["address"]).startswith(("http://", "https://")):
        raise ValueError(f"`metrics.address` {spec['address']!r} must be an http:// or https:// URL")
    queries = spec.get("queries") or {}
    if not isinstance(queries, dict):
        raise ValueError("`metrics.queries` must be a mapping, e.g. {requests: 'sum(…)'}")
    for key, query in queries.items():
        if key not in DEFAULT_QUERIES:
            raise ValueError(
                f"`metrics.queries.{key}` is not a query name; valid: {', '.join(DEFAULT_QUERIES)}"
            )
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"`metrics.queries.{key}` must be a PromQL string")
    if "{variant}" not in str(queries.get("requests", "{variant}")):
        raise ValueError(
            "`metrics.queries.requests` must contain `{variant}`, or stable and canary would read the same "
            "series"
        )
    unit = str(spec.get("latency-unit", "s")).strip().lower()
    if unit not in ("s", "ms"):
        raise ValueError(f"`metrics.latency-unit` is {unit!r}; use s (Prometheus' convention) or ms")
    spec["latency-unit"] = unit
    spec["queries"] = {**DEFAULT_QUERIES, **queries}
    return spec


def finite_number(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


class PrometheusSource:
    kind = "prometheus"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.url = str(spec["address"]).rstrip("/") + "/api/v1/query"
        self.queries: dict[str, str] = dict(spec["queries"])
        self.scale = 1000.0 if spec.get("latency-unit", "s") == "s" else 1.0
        self.timeout = float(spec.get("timeout", 10.0))

    def describe(self) -> str:
        return f"Prometheus at {self.url}"

    def render(self, name: str, variant: str, window_s: float) -> str:
        # str.replace, not format(): PromQL is full of braces.
        return (
            self.queries[name]
            .replace("{variant}", variant)
            .replace("{window}", f"{max(1, math.ceil(window_s))}s")
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        import requests

        headers = {}
        token = os.environ.get(TOKEN_ENV, "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = requests.get(
                self.url,
                params={"query": promql, "time": f"{time.time():.3f}"},
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise MetricsError(f"{self.url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise MetricsError(
                f"{self.url} answered HTTP {response.status_code} that is not JSON "
                f"({response.text[:60].strip()!r}…)"
            ) from None
        if response.status_code == 400 or (isinstance(body, dict) and body.get("errorType") == "bad_data"):
            raise QueryError(
                f"Prometheus rejected `{promql}`: {body.get('error', '') if isinstance(body, dict) else body}"
            )
        if response.status_code in (401, 403):
            raise MetricsError(
                f"{self.url}: HTTP {response.status_code}; set {TOKEN_ENV} to a token Prometheus accepts"
            )
        if response.status_code >= 300 or not isinstance(body, dict) or body.get("status") != "success":
            raise MetricsError(f"{self.url}: HTTP {response.status_code} {str(body)[:200]}")
        data = body.get("data") or {}
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data.get("result")}]
        if data.get("resultType") != "vector":
            raise QueryError(
                f"`{promql}` returns a {data.get('resultType')}; canary queries must return an instant vector"
            )
        return list(data.get("result") or [])

    def _value(self, promql: str) -> float | None:
        series = self.query(promql)
        values = [finite_number((s.get("value") or [None, None])[1]) for s in series]
        found = [v for v in values if v is not None]
        return sum(found) if found else None

    def read(self, variants: list[str], window_s: float) -> dict[str, Figures]:
        return {variant: self._figures(variant, window_s) for variant in variants}

    def _figures(self, variant: str, window_s: float) -> Figures:
        requests = self._value(self.render("requests", variant, window_s))
        errors = self._value(self.render("errors", variant, window_s))
        if requests is not None and errors is None:
            errors = 0.0  # no 5xx series yet: an error counter appears with its first error
        p99 = self._value(self.render("latency-p99", variant, window_s))
        buckets = []
        for series in self.query(self.render("latency-buckets", variant, window_s)):
            le, count = (
                finite_number((series.get("metric") or {}).get("le")),
                finite_number((series.get("value") or [None, None])[1]),
            )
            if (series.get("metric") or {}).get("le") == "+Inf":
                le = math.inf
            if le is not None and count is not None:
                buckets.append((le * self.scale, count))
        return Figures(
            requests=requests,
            errors=errors,
            p99_ms=p99 * self.scale if p99 is not None else None,
            bins=bins_from_cumulative(buckets) if buckets else None,
        )


class HttpSource:
    kind = "http"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.url = str(spec["address"])
        self.timeout = float(spec.get("timeout", 10.0))

    def describe(self) -> str:
        return f"the metrics endpoint {self.url}"

    def fetch(self, window_s: float) -> dict[str, Any]:
        params = {"window": f"{max(1, math.ceil(window_s))}"}
        return request_json(
            "GET",
            self.url,
            TOKEN_ENV,
            MetricsError,
            "an object keyed by variant",
            params=params,
            timeout=self.timeout,
        )

    def read(self, variants: list[str], window_s: float) -> dict[str, Figures]:
        body = self.fetch(window_s)  # both variants in one response
        return {variant: self._figures(body.get(variant)) for variant in variants}

    def _figures(self, entry: Any) -> Figures:
        if not isinstance(entry, dict):
            return Figures(requests=None)
        buckets = []
        for pair in entry.get("latency_buckets_ms") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                le = math.inf if pair[0] in ("+Inf", "inf", None) else finite_number(pair[0])
                count = finite_number(pair[1])
                if le is not None and count is not None:
                    buckets.append((le, count))
        requests = finite_number(entry.get("requests"))
        errors = finite_number(entry.get("errors"))
        return Figures(
            requests=requests,
            errors=errors if errors is not None or requests is None else 0.0,
            p99_ms=finite_number(entry.get("latency_p99_ms")),
            bins=bins_from_cumulative(buckets) if buckets else None,
        )


def make_source(spec: Mapping[str, Any]) -> PrometheusSource | HttpSource:
    return PrometheusSource(spec) if spec["type"] == "prometheus" else HttpSource(spec)

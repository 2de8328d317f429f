#!/usr/bin/env python3
"""Canary judge quality: false rollbacks of healthy canaries, detection and speed for bad ones.

    python benchmarks/canary_judge_quality.py [--quick] [--seed N] [--json PATH]

Whole rollouts run through the stage's own `Rollout.run()` (mlcicd.stages.canary_shift): its plan,
its analyse loop (window since the step started, reset after a failed check, failure-limit,
max-inconclusive) and the product's judge (mlcicd.judge.judge), with the stage's option defaults.
Only the outside world is simulated: an in-memory router, a metrics source that draws the counts
of the time since its last read (an interval, or a poll for the sequential judge), and a virtual
clock in place of `time` inside canary_shift, so an interval of 5 minutes costs nothing. Nothing
is started, no network is used. The four judges (threshold, statistical, both, sequential) see the
same draws.

Traffic model, per read: total requests ~ Poisson(rate × elapsed / interval); canary requests ~ Binomial(total,
weight); errors ~ Binomial(requests, error rate); latencies lognormal (median 30 ms, p99 80 ms
for a healthy model) binned into the example server's Prometheus buckets by a multinomial draw;
p99 = quantile_from_bins over the window's buckets (what histogram_quantile returns). Stable is
always healthy (0.5 % errors).

`run(quick)` is imported by benchmarks/run.py; it returns {"title", "markdown", "results"}.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import sys
import time
from typing import Any

import numpy as np

import common
from common import ROOT, pct, wilson

SEED = 20240612
TITLE = "Canary judge quality (canary-shift)"
JUDGE_KINDS = ("threshold", "statistical", "both", "sequential")
STABLE_ERROR_RATE = 0.005
LATENCY_MEDIAN_MS = 30.0
LATENCY_P99_MS = 80.0
Z99 = 2.3263478740408408  # standard normal 0.99 quantile
SCENARIOS = (
    # name, error rate, latency scale (every quantile multiplied), healthy?
    ("healthy", STABLE_ERROR_RATE, 1.0, True),
    ("errors +1 pt", STABLE_ERROR_RATE + 0.01, 1.0, False),
    ("errors +5 pts", STABLE_ERROR_RATE + 0.05, 1.0, False),
    ("p99 ×1.5", STABLE_ERROR_RATE, 1.5, False),
    ("p99 ×2", STABLE_ERROR_RATE, 2.0, False),
    ("p99 ×3", STABLE_ERROR_RATE, 3.0, False),
)
TRAFFIC = (  # requests per interval (both variants together), what it means at the defaults, min-requests reachable?
    (20_000, "high: every step has ≥ min-requests in its first interval", True),
    (
        2_000,
        "5 % step ≈ 100 canary requests per interval (about half the first checks are inconclusive)",
        True,
    ),
    (1_000, "low: 5 % step ≈ 50 per interval, min-requests reached in the 2nd interval", True),
    (500, "too low: 5 % step ≈ 25 per interval, 75 after max-inconclusive intervals", False),
)
FULL_REPS = {"healthy": 1000, "bad": 200}
QUICK_REPS = {"healthy": 200, "bad": 50}
QUICK_TRAFFIC = (2_000, 1_000)


def bucket_bounds_ms() -> tuple[float, ...]:
    """The latency buckets of examples/serving/model_server.py (seconds there), in ms, read without importing it."""
    source = (ROOT / "examples" / "serving" / "model_server.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "BUCKETS" for t in node.targets
        ):
            return tuple(1000.0 * float(b) for b in ast.literal_eval(node.value)) + (math.inf,)
    raise RuntimeError("BUCKETS not found in examples/serving/model_server.py")


def bin_probabilities(bounds_ms: tuple[float, ...], scale: float) -> np.ndarray:
    """P(latency in each bucket) for lognormal(median 30 ms × scale, σ with p99 = 80 ms × scale)."""
    from scipy.stats import norm

    sigma = math.log(LATENCY_P99_MS / LATENCY_MEDIAN_MS) / Z99
    mu = math.log(LATENCY_MEDIAN_MS * scale)
    cdf = np.array([norm.cdf((math.log(b) - mu) / sigma) if math.isfinite(b) else 1.0 for b in bounds_ms])
    probs = np.diff(np.concatenate([[0.0], cdf]))
    return probs / probs.sum()


def stage_values() -> dict[str, Any]:
    """canary-shift's option defaults (steps 5,25,50,100; min-requests 100; failure-limit 1; ...)."""
    from mlcicd.stages.canary_shift import OPTIONS

    values = {o.name: o.default for o in OPTIONS}
    values["router"] = {"type": "simulated"}
    values["metrics"] = {"type": "simulated"}
    return values


class VirtualClock:
    """Stands in for the `time` module inside canary_shift: sleep advances, time reads."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def time(self) -> float:
        return self.now


@contextlib.contextmanager
def virtual_time(clock: VirtualClock) -> Any:
    from mlcicd.stages import canary_shift

    real = canary_shift.time
    canary_shift.time = clock
    try:
        yield
    finally:
        canary_shift.time = real


def make_router_class() -> type:
    from mlcicd.routers import Router, Weights

    class SimRouter(Router):
        kind = "simulated"

        def __init__(self) -> None:
            super().__init__("stable", "canary", 1.0)
            self.weights = Weights(0)

        def describe(self) -> str:
            return "simulated router"

        def read(self) -> Weights:
            return self.weights

        def _write(self, weights: Weights) -> None:
            self.weights = weights

    return SimRouter


class SimSource:
    """The traffic since the last read, at the router's current weight (a read every interval draws one interval,
    a read every poll one poll's worth); the window sums the draws of the current step that fall inside the seconds
    the stage asks for (the time since its window started)."""

    def __init__(
        self,
        rng: np.random.Generator,
        router: Any,
        rate: float,
        interval: float,
        canary: dict[str, Any],
        stable: dict[str, Any],
        clock: Any,
    ):
        self.rng, self.router, self.rate, self.interval, self.clock = rng, router, rate, interval, clock
        self.variant = {"canary": canary, "stable": stable}
        self.weight: float | None = None
        self.history: list[tuple[float, dict[str, np.ndarray]]] = []
        self.last = clock.time()

    def describe(self) -> str:
        return "simulated metrics"

    def _draw(self, n: int, spec: dict[str, Any]) -> np.ndarray:
        errors = self.rng.binomial(n, spec["error_rate"])
        bins = self.rng.multinomial(n, spec["bin_probs"])
        return np.concatenate([[n, errors], bins])

    def read(self, variants: list[str], window_s: float) -> dict[str, Any]:
        from mlcicd.judge import Figures, quantile_from_bins

        weight = self.router.weights.canary
        now = self.clock.time()
        if weight != self.weight:  # a new step: its window starts empty
            self.weight, self.history = weight, []
        total = int(self.rng.poisson(self.rate * (now - self.last) / self.interval))
        self.last = now
        n_canary = int(self.rng.binomial(total, weight / 100.0))
        self.history.append(
            (
                now,
                {
                    "canary": self._draw(n_canary, self.variant["canary"]),
                    "stable": self._draw(total - n_canary, self.variant["stable"]),
                },
            )
        )
        window = [h for t, h in self.history if t > now - window_s - 1e-6] or [self.history[-1][1]]
        out = {}
        for name in variants:
            summed = np.sum([h[name] for h in window], axis=0)
            bins = tuple((b, float(c)) for b, c in zip(self.variant[name]["bounds"], summed[2:], strict=True))
            out[name] = Figures(
                requests=float(summed[0]),
                errors=float(summed[1]),
                p99_ms=quantile_from_bins(bins, 0.99),
                bins=bins,
            )
        return out


def simulate(
    judge_kind: str,
    scenario: tuple,
    rate: float,
    seed_seq: np.random.SeedSequence,
    values: dict[str, Any],
    bins: dict,
) -> dict:
    from mlcicd.stages.canary_shift import Registry, Rollout, make_plan

    class QuietRollout(Rollout):
        def _log(self, check: Any) -> None:  # the per-check console line; nothing to decide there
            pass

    _, error_rate, scale, _ = scenario
    router = make_router_class()()
    stable = {"error_rate": STABLE_ERROR_RATE, "bin_probs": bins[1.0], "bounds": bins["bounds"]}
    canary = {"error_rate": error_rate, "bin_probs": bins[scale], "bounds": bins["bounds"]}
    clock = VirtualClock()
    source = SimSource(
        np.random.default_rng(seed_seq), router, rate, values["interval"], canary, stable, clock
    )
    run_values = {**values, "judge": judge_kind}
    rollout = QuietRollout(run_values, router, source, make_plan(run_values), Registry("", ""))
    rollout.changed = (
        True  # skip the `traffic-changed` step output (a write to $GITHUB_OUTPUT inside Actions)
    )
    started = clock.time()
    with virtual_time(clock), contextlib.redirect_stdout(io.StringIO()):  # the stage's progress lines
        rollout.run()
    took = clock.time() - started
    checks = [(step.weight.canary, c) for step in rollout.steps for c in step.checks]
    first_enough = next(
        (i for i, (_, c) in enumerate(checks, 1) if (c.canary.requests or 0) >= values["min-requests"]), None
    )
    rolled_back = rollout.result != "promoted"
    last = checks[-1][1] if checks else None
    if judge_kind == "sequential" and rolled_back and first_enough:
        # polls, not checks: count the intervals from the first poll with min-requests to the rollback (1 = within one)
        since = checks[-1][1].at - checks[first_enough - 1][1].at
        after = max(1, math.ceil(since / values["interval"] - 1e-9))
    else:
        after = (len(checks) - first_enough + 1) if rolled_back and first_enough else None
    return {
        "result": rollout.result,
        "rolled_back": rolled_back,
        "checks": len(checks),
        "weight_at_end": checks[-1][0] if rolled_back and checks else 100,
        "cause": last.counted_as if rolled_back and last else None,
        "failed_on": sorted({f"{f.judge} {f.metric}" for f in last.verdict.findings if f.verdict == "fail"})
        if rolled_back and last
        else [],
        "first_enough": first_enough,
        "intervals_after_enough": after,
        "seconds": took,
    }


def summarise(runs: list[dict[str, Any]], healthy: bool, interval: float) -> dict[str, Any]:
    n = len(runs)
    rolled = [r for r in runs if r["rolled_back"]]
    k = len(rolled)
    lo, hi = wilson(k, n)
    after = [r["intervals_after_enough"] for r in rolled if r["intervals_after_enough"] is not None]
    out = {
        "runs": n,
        "rolled_back": k,
        "rate": k / n,
        "ci95": [lo, hi],
        "rolled_back_inconclusive": sum(1 for r in rolled if r["cause"] == "fail (inconclusive)"),
        "rolled_back_at_weight": {
            str(w): sum(1 for r in rolled if r["weight_at_end"] == w)
            for w in sorted({r["weight_at_end"] for r in rolled})
        },
        "median_checks": float(np.median([r["checks"] for r in runs])),
        "median_seconds": float(np.median([r["seconds"] for r in runs])),
        "median_seconds_promoted": float(np.median([r["seconds"] for r in runs if not r["rolled_back"]]))
        if k < n
        else None,
        "failed_on": {},
    }
    for r in rolled:
        for name in r["failed_on"]:
            out["failed_on"][name] = out["failed_on"].get(name, 0) + 1
    if not healthy:
        # the target's population: runs whose canary window reached min-requests before the rollout ended
        out["reached_min_requests"] = sum(1 for r in runs if r["first_enough"] is not None)
        out["within_one_interval"] = sum(1 for a in after if a == 1)
        out["intervals_after_enough_median"] = float(np.median(after)) if after else None
        out["intervals_after_enough_p95"] = (
            float(np.percentile(after, 95, method="inverted_cdf")) if after else None
        )
        seconds = [r["seconds"] for r in rolled]
        # the clock: from the rollout's start, whatever min-requests says (the 5 % step's first interval)
        out["rolled_back_in_first_interval"] = sum(1 for r in rolled if r["seconds"] <= interval + 1e-6)
        out["rollback_seconds_median"] = float(np.median(seconds)) if seconds else None
        out["rollback_seconds_p95"] = (
            float(np.percentile(seconds, 95, method="inverted_cdf")) if seconds else None
        )
    return out


def measure(quick: bool, seed: int) -> dict[str, Any]:
    values = stage_values()
    bounds = bucket_bounds_ms()
    bins: dict[Any, Any] = {"bounds": bounds}
    for _, _, scale, _ in SCENARIOS:
        bins[scale] = bin_probabilities(bounds, scale)
    reps = QUICK_REPS if quick else FULL_REPS
    traffic = [t for t in TRAFFIC if not quick or t[0] in QUICK_TRAFFIC]
    cells: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for rate, _, _ in traffic:
        t0 = time.perf_counter()
        for si, scenario in enumerate(SCENARIOS):
            healthy = scenario[3]
            n = reps["healthy" if healthy else "bad"]
            for judge_kind in JUDGE_KINDS:
                # common random numbers: the three judges see the same traffic draws
                runs = [
                    simulate(
                        judge_kind,
                        scenario,
                        rate,
                        np.random.SeedSequence([seed, rate, si, rep]),
                        values,
                        bins,
                    )
                    for rep in range(n)
                ]
                cells[f"{rate}|{scenario[0]}|{judge_kind}"] = {
                    "rate": rate,
                    "scenario": scenario[0],
                    "judge": judge_kind,
                    "healthy": healthy,
                    **summarise(runs, healthy, values["interval"]),
                }
        seconds[str(rate)] = time.perf_counter() - t0
    limits = {
        k: values[k]
        for k in (
            "min-requests",
            "max-error-rate",
            "max-latency-p99-ms",
            "alpha",
            "error-rate-tolerance",
            "latency-tolerance",
        )
    }
    return {
        "seed": seed,
        "quick": quick,
        "reps": reps,
        "traffic": [rate for rate, _, _ in traffic],
        "options": {
            **limits,
            "steps": "5,25,50,100",
            "interval_s": values["interval"],
            "poll_s": values["poll"],
            "failure-limit": values["failure-limit"],
            "max-inconclusive": values["max-inconclusive"],
        },
        "latency_bucket_bounds_ms": [b if math.isfinite(b) else "+Inf" for b in bounds],
        "healthy_bucket_probabilities": [round(float(p), 6) for p in bins[1.0]],
        "cells": cells,
        "one_check_power": {str(rate): one_check_power(values, rate) for rate in [r for r, _, _ in traffic]},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def verdict(cell: dict[str, Any]) -> tuple[bool | None, str]:
    """Target: healthy ≤ 1 % rolled back; bad: of the runs whose canary reached min-requests, ≥ 99 % rolled back at
    the first check with ≥ min-requests (a bad canary promoted counts against it)."""
    if cell["healthy"]:
        met = cell["rate"] <= 0.01
        return met, f"{'met' if met else 'MISSED'} ({pct(cell['rate'])} false rollbacks, target ≤ 1 %)"
    reached = cell["reached_min_requests"]
    if reached < cell["runs"] / 2:
        return None, (
            f"n/a: min-requests reached in {reached}/{cell['runs']} runs; the rest were rolled back after "
            "max-inconclusive checks without data"
        )
    share = cell["within_one_interval"] / reached
    met = share >= 0.99
    return (
        met,
        f"{'met' if met else 'MISSED'} ({pct(share)} of {reached} rolled back within one interval, target ≥ 99 %)",
    )


def summary_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Two targets per judge for the run's summary: false rollbacks, and bad canaries rolled back within one interval.
    Evaluated on the traffic levels where the 5 % step can reach min-requests before max-inconclusive checks; the
    others are listed in the figure but cannot meet a target that presumes data."""
    reachable = {rate for rate, _, ok in TRAFFIC if ok}
    out = []
    for judge_kind in JUDGE_KINDS:
        healthy, bad, healthy_met, bad_met = [], [], [], []
        for rate in results["traffic"]:
            cell = results["cells"][f"{rate}|healthy|{judge_kind}"]
            note = "" if rate in reachable else " (min-requests unreachable)"
            healthy.append(f"{pct(cell['rate'])} at {rate:,}/interval{note}")
            if rate in reachable:
                healthy_met.append(verdict(cell)[0])
            worst = None
            for scenario in SCENARIOS[1:]:
                c = results["cells"][f"{rate}|{scenario[0]}|{judge_kind}"]
                met, _ = verdict(c)
                if met is None:
                    continue
                share = c["within_one_interval"] / c["reached_min_requests"]
                if worst is None or share < worst[0]:
                    worst = (share, scenario[0])
                if rate in reachable:
                    bad_met.append(met)
            bad.append(
                f"{pct(worst[0])} ({worst[1]}) at {rate:,}/interval{note}"
                if worst
                else f"n/a at {rate:,}/interval{note}"
            )
        out.append(
            {
                "target": f"canary, judge {judge_kind}: ≤ 1 % of healthy canaries rolled back",
                "measured": "; ".join(healthy),
                "met": all(healthy_met) if healthy_met else None,
            }
        )
        out.append(
            {
                "target": f"canary, judge {judge_kind}: bad canaries rolled back within one interval once min-requests is reached (≥ 99 %)",
                "measured": "lowest share over the bad scenarios: " + "; ".join(bad),
                "met": all(bad_met) if bad_met else None,
            }
        )
    out += sequential_targets(results)
    return out


FIXED = "both"
"""The fixed-interval judge the sequential one is compared with: the stage's default."""


def _first_interval_share(cell: dict[str, Any]) -> float:
    return cell["rolled_back_in_first_interval"] / cell["runs"]


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} s"


def sequential_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 18's targets for the sequential judge, against the fixed-interval judge on the same traffic."""
    interval = results["options"]["interval_s"]
    out = []
    big = [
        rate for rate in results["traffic"] if rate * 5 / 100 >= 1000
    ]  # ≥ 1,000 canary requests per interval at 5 %
    for scenario in ("errors +5 pts", "p99 ×2"):
        measured, met = [], []
        for rate in big:
            seq, fixed = (results["cells"][f"{rate}|{scenario}|{j}"] for j in ("sequential", FIXED))
            share = _first_interval_share(seq)
            met.append(share >= 0.99)
            measured.append(
                f"{pct(share)} at {rate:,}/interval ({FIXED}: {pct(_first_interval_share(fixed))})"
            )
        out.append(
            {
                "target": f"canary, judge sequential: {scenario} rolled back within the first interval ({interval:g} s) at ≥ 1,000 "
                "canary requests per interval (≥ 99 %)",
                "measured": "; ".join(measured) or "no traffic level with 1,000 canary requests per interval",
                "met": all(met) if met else None,
            }
        )
    measured = []
    for rate in results["traffic"]:
        c = results["cells"][f"{rate}|errors +1 pt|sequential"]
        f = results["cells"][f"{rate}|errors +1 pt|{FIXED}"]
        measured.append(
            f"{rate:,}/interval: {pct(c['rate'])} rolled back, median {_seconds(c['rollback_seconds_median'])} / p95 "
            f"{_seconds(c['rollback_seconds_p95'])} ({FIXED}: {pct(f['rate'])}, {_seconds(f['rollback_seconds_median'])} / "
            f"{_seconds(f['rollback_seconds_p95'])})"
        )
    out.append(
        {
            "target": "canary, judge sequential: errors +1 pt, time to rollback (measure)",
            "measured": "; ".join(measured),
            "met": None,
        }
    )
    measured, met = [], []
    for rate in results["traffic"]:
        if rate < 1000:
            continue
        seq, fixed = (
            results["cells"][f"{rate}|healthy|{j}"]["median_seconds_promoted"] for j in ("sequential", FIXED)
        )
        if seq is None or not fixed:
            continue
        saving = 1 - seq / fixed
        met.append(saving >= 0.30)
        measured.append(
            f"{pct(saving)} sooner at {rate:,}/interval (median {_seconds(seq)} vs {_seconds(fixed)})"
        )
    out.append(
        {
            "target": "canary, judge sequential: healthy rollouts finish ≥ 30 % sooner than with fixed intervals at ≥ 1,000 requests per interval",
            "measured": "; ".join(measured),
            "met": all(met) if met else None,
        }
    )
    return out


def sequential_text(results: dict[str, Any]) -> list[str]:
    """Side by side on the same draws: what polling with anytime-valid bounds buys, and what it costs."""
    o = results["options"]
    rows = []
    for rate in results["traffic"]:
        for judge_kind in JUDGE_KINDS:
            cell = {name: results["cells"][f"{rate}|{name}|{judge_kind}"] for name, *_ in SCENARIOS}
            h, one = cell["healthy"], cell["errors +1 pt"]
            rows.append(
                f"| {rate:,} | {judge_kind} | {pct(h['rate'])} | {_seconds(h['median_seconds_promoted'])} "
                f"| {pct(_first_interval_share(cell['errors +5 pts']))} | {pct(_first_interval_share(cell['p99 ×2']))} "
                f"| {pct(one['rate'])}: {_seconds(one['rollback_seconds_median'])} / {_seconds(one['rollback_seconds_p95'])} |"
            )
    return [
        "",
        "### Sequential judge against the fixed-interval judges",
        "",
        f"`judge: sequential` reads the metrics every `poll` ({o['poll_s']:g} s) and judges them with anytime-valid confidence "
        "sequences (beta-binomial mixtures, Howard et al. 2021): it rolls back as soon as the canary's error rate exceeds "
        "stable's by more than error-rate-tolerance, or more than 1 % of its requests are slower than stable's p99 × "
        "(1 + latency-tolerance), and advances as soon as both are shown within those margins on ≥ min-requests; `interval` "
        "is the longest a step may take, and a step still undecided then is judged by `statistical`'s fixed-sample tests "
        "(alpha split over both, as for `both`). Same draws as above. Time is virtual seconds from the rollout's start; the first "
        f"interval ends at {o['interval_s']:g} s.",
        "",
        "| requests per interval | judge | healthy rolled back | healthy: median time to promote | errors +5 pts: rolled back "
        "in the first interval | p99 ×2: rolled back in the first interval | errors +1 pt: rolled back, median / p95 time to rollback |",
        "|---:|---|---:|---:|---:|---:|---|",
        *rows,
    ]


def one_check_power(values: dict[str, Any], rate: int) -> dict[str, Any]:
    """Why "errors +1 pt" cannot be rolled back at the first check: the power of one check's error-rate test on the
    first step's canary requests, exactly for the threshold judge (one-sided binomial against max-error-rate) and as an
    upper bound for the statistical one (a binomial against the stable rate taken as known, which Fisher's test on a
    finite stable window cannot beat), each at the per-test alpha canary-shift uses; and the canary requests one check
    would need for 99 % power."""
    from mlcicd.stages.canary_shift import make_plan, per_test_alpha

    plan = make_plan(values)
    per_interval = round(rate * plan[0].canary / 100)
    # the check that first has min-requests in its window (intervals accumulate until then)
    intervals = math.ceil(values["min-requests"] / per_interval) if per_interval else math.inf
    n = per_interval * intervals if intervals <= values["max-inconclusive"] else 0
    bad = STABLE_ERROR_RATE + 0.01
    out: dict[str, Any] = {"canary_requests": n, "bad_rate": bad}
    for judge_kind, null_rate, tolerance in (
        ("threshold", values["max-error-rate"], None),  # any significant excess over the limit fails
        (
            "statistical",
            STABLE_ERROR_RATE,
            values["error-rate-tolerance"],
        ),  # and the gap must pass the tolerance band
    ):
        alpha = per_test_alpha(values["alpha"], plan, judge_kind)
        needed = next(
            (
                m
                for m in (2**e for e in range(6, 22))
                if _error_test_power(m, alpha, null_rate, tolerance, bad) >= 0.99
            ),
            None,
        )
        if (
            needed is not None
        ):  # bisect between the last power of two that fell short and the first that did not
            lo = needed // 2
            while needed - lo > max(1, needed // 100):
                mid = (lo + needed) // 2
                lo, needed = (
                    (lo, mid)
                    if _error_test_power(mid, alpha, null_rate, tolerance, bad) >= 0.99
                    else (mid, needed)
                )
        power = _error_test_power(n, alpha, null_rate, tolerance, bad) if n else 0.0
        out[judge_kind] = {"alpha": alpha, "power": power, "requests_for_99": needed}
    return out


def _error_test_power(
    requests: int, alpha: float, null_rate: float, tolerance: float | None, bad_rate: float
) -> float:
    """P(a one-sided exact binomial test at `alpha` against `null_rate` rejects) when the true rate is `bad_rate`."""
    from scipy.stats import binom

    k = (
        int(binom.isf(alpha, requests, null_rate)) + 1
    )  # the smallest error count with P(>= k | null) <= alpha
    if tolerance is not None:
        k = max(k, math.floor(requests * (null_rate + tolerance)) + 1)
    return float(binom.sf(k - 1, requests, bad_rate))


def limits_text(results: dict[str, Any]) -> list[str]:
    """What no judge at these settings can do, so the MISSED rows are read for what they are."""
    o = results["options"]
    latency_p99 = {scale: LATENCY_P99_MS * scale for _, _, scale, _ in SCENARIOS}
    rows = []
    for rate in results["traffic"]:
        p = results["one_check_power"][str(rate)]
        if not p["canary_requests"]:
            rows.append(
                f"| {rate:,} | min-requests not reached | – | {p['threshold']['requests_for_99']:,} | – | {p['statistical']['requests_for_99']:,} |"
            )
            continue
        rows.append(
            f"| {rate:,} | {p['canary_requests']:,} | {pct(p['threshold']['power'])} | {p['threshold']['requests_for_99']:,} "
            f"| ≤ {pct(p['statistical']['power'])} | {p['statistical']['requests_for_99']:,} |"
        )
    return [
        "",
        "### Why some bad canaries cannot be rolled back within one interval",
        "",
        f"- **p99 ×1.5 with the `threshold` judge**: the canary's p99 is about {latency_p99[1.5]:g} ms, under the absolute "
        f"limit max-latency-p99-ms {o['max-latency-p99-ms']:g}. The threshold judge checks absolute limits only: a canary "
        "that stays within them passes by design, however much slower than stable it is. Catching a relative slowdown is "
        "the `statistical` judge's job (it compares with stable and rolls these back) or needs a lower limit.",
        f"- **errors +1 point** ({pct(STABLE_ERROR_RATE)} → {pct(STABLE_ERROR_RATE + 0.01)}) is a small effect for the "
        "first step's canary traffic. One check's error-rate test has the power below (the threshold judge's exact "
        "binomial test against max-error-rate; for the statistical judge an upper bound: a binomial test against the "
        "stable rate taken as exactly known, plus the error-rate-tolerance band), each at the per-test alpha canary-shift "
        f"uses (the rollout's alpha {o['alpha']:g} Bonferroni-split over judged steps and tests: "
        f"{results['one_check_power'][str(results['traffic'][0])]['threshold']['alpha']:.2g} for `threshold` and "
        f"`statistical`, half that for `both`). With ~100 canary requests a check expects 1.5 errors against 1 at the "
        "limit: no test at a false-rollback rate this low can tell them apart in one interval. The right-hand columns give "
        "the canary requests one check would need for 99 % power; below that, the rollback comes at a later check as the "
        "window and the weight grow, as the tables show.",
        "",
        "| requests per interval | canary requests in the first check with ≥ min-requests (5 % step) | threshold: power of one check | threshold: requests for 99 % "
        "| statistical: power of one check | statistical: requests for 99 % |",
        "|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def render(results: dict[str, Any]) -> str:
    o = results["options"]
    traffic_text = {rate: text for rate, text, _ in TRAFFIC}
    lines = [
        "Whole rollouts run through canary-shift's own `Rollout.run()` (plan, `analyse` loop with its window, failure-limit and "
        "max-inconclusive rules) and `mlcicd.judge.judge`, at the stage defaults: steps "
        f"{o['steps']}, interval {o['interval_s']:g} s (virtual clock), min-requests {o['min-requests']}, "
        f"max-error-rate {o['max-error-rate']:g}, max-latency-p99-ms {o['max-latency-p99-ms']:g}, alpha {o['alpha']:g}, "
        f"error-rate-tolerance {o['error-rate-tolerance']:g}, latency-tolerance {o['latency-tolerance']:g}, "
        f"failure-limit {o['failure-limit']}, max-inconclusive {o['max-inconclusive']}. Router, metrics source and clock are "
        "simulated in memory; no server is started.",
        "",
        "Traffic at each read of the metrics, for the time since the last read (one interval for the fixed-interval judges, one "
        "poll for `sequential`): total ~ Poisson(rate × elapsed / interval), canary ~ Binomial(total, weight), errors ~ "
        "Binomial(requests, rate), "
        f"latency lognormal (median {LATENCY_MEDIAN_MS:g} ms, p99 {LATENCY_P99_MS:g} ms when healthy) drawn into the buckets of "
        "`examples/serving/model_server.py` "
        f"({', '.join(f'{b:g}' for b in results['latency_bucket_bounds_ms'] if b != '+Inf')} ms, +Inf) by a multinomial; "
        "p99 = `quantile_from_bins` of the window's buckets (as `histogram_quantile`). Stable: 0.5 % errors, healthy latency. "
        "Bad canaries: error rate +1 or +5 points, or every latency quantile ×1.5, ×2 or ×3 (p99 120, 160 or 240 ms). "
        f"Runs per judge and traffic level: {results['reps']['healthy']} healthy, {results['reps']['bad']} per bad scenario "
        f"(the four judges see the same traffic draws); seed {results['seed']}. `sequential` polls every {o['poll_s']:g} s.",
        "",
        "**Rolled back** = the rollout did not reach 100 %. **Failed on**: the findings that failed the last check (a check can fail on "
        "more than one). **Intervals after min-requests**: checks from the first one whose "
        "window held ≥ min-requests canary requests up to and including the one that rolled back (1 = rolled back at that first "
        "check); *within 1* is the share of the runs that reached min-requests. Target: healthy ≤ 1 % rolled back; bad: ≥ 99 % "
        "of those that reached min-requests rolled back at that first check (a promoted bad canary counts against it).",
    ]
    for rate in results["traffic"]:
        lines += [
            "",
            f"### {rate:,} requests per interval",
            "",
            f"{traffic_text[rate][0].upper()}{traffic_text[rate][1:]}.",
            "",
            "| scenario | judge | rolled back (95 % CI) | failed on | rolled back at weight | intervals after min-requests: median / p95 / within 1 | Target |",
            "|---|---|---|---|---|---|---|",
        ]
        for scenario in SCENARIOS:
            for judge_kind in JUDGE_KINDS:
                c = results["cells"][f"{rate}|{scenario[0]}|{judge_kind}"]
                lo, hi = c["ci95"]
                at = ", ".join(f"{w} %: {k}" for w, k in c["rolled_back_at_weight"].items()) or "–"
                why = [f"{name} {k}" for name, k in sorted(c["failed_on"].items())]
                if c["rolled_back_inconclusive"]:
                    why.append(
                        f"{o['max-inconclusive']} inconclusive in a row {c['rolled_back_inconclusive']}"
                    )
                why_text = ", ".join(why) or "–"
                if c["healthy"]:
                    speed = "–"
                elif c["intervals_after_enough_median"] is None:
                    speed = "n/a"
                else:
                    speed = (
                        f"{c['intervals_after_enough_median']:g} / {c['intervals_after_enough_p95']:g} / "
                        f"{pct(c['within_one_interval'] / c['reached_min_requests'] if c['reached_min_requests'] else 0.0)}"
                    )
                lines.append(
                    f"| {scenario[0]} | {judge_kind} | {c['rolled_back']}/{c['runs']} = {pct(c['rate'])} ({100 * lo:.1f}–{100 * hi:.1f}) "
                    f"| {why_text} | {at} | {speed} | {verdict(c)[1]} |"
                )
    lines += sequential_text(results)
    lines += limits_text(results)
    lines += [
        "",
        "Run time: "
        + ", ".join(f"{int(k):,}/interval {v:.1f} s" for k, v in results["seconds"].items())
        + ".",
    ]
    return "\n".join(lines)


def run(quick: bool = False, seed: int = SEED) -> dict[str, Any]:
    results = measure(quick, seed)
    for cell in results["cells"].values():
        cell["target_met"], cell["target_text"] = verdict(cell)
    results["targets"] = summary_targets(results)
    return {"title": TITLE, "markdown": render(results), "results": results}


def main() -> int:
    return common.main(
        run, __doc__, "2,000 and 1,000 requests/interval; 200 healthy and 50 bad runs each", SEED
    )


if __name__ == "__main__":
    sys.exit(main())

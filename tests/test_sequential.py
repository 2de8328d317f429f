"""The sequential judge's anytime-valid statistics, its decisions, and canary-shift's polling loop, without servers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from mlcicd.judge import FAIL, INCONCLUSIVE, PASS, Figures, Limits
from mlcicd.routers import Router, Weights
from mlcicd.sequential import (
    _bernoulli_log_mixture,
    beta_binomial_log_mixture,
    confidence_interval,
    detectable_error_excess,
    detectable_tail_share,
    lower_bound,
    sequential_verdict,
    size_steps,
    sizing_warnings,
    undecided_only,
    upper_bound,
)

LIMITS = Limits(min_requests=100, max_error_rate=0.01, max_latency_p99_ms=150, alpha=0.01 / 6)
BOUNDS = (5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0, math.inf)


# --- the confidence sequences, against the reference implementation's published values ---------------------
# confseq (Howard, Ramdas, McAuliffe, Sekhon; github.com/gostevehoward/confseq), test/uniform_boundaries_unittest.cpp:
# V_OPT = 100, ALPHA_OPT = 0.05.


def test_beta_binomial_mixture_matches_confseq():
    assert beta_binomial_log_mixture(10, 100, 100, 0.2, 0.8, 0.05, one_sided=False) == pytest.approx(
        -0.6941012, abs=1e-5
    )
    assert beta_binomial_log_mixture(10, 100, 100, 0.2, 0.8, 0.05, one_sided=True) == pytest.approx(
        -0.07134019, abs=1e-5
    )


@pytest.mark.parametrize(
    "successes, trials, t_opt, expected",
    [
        (700, 1000, 100, (0.651629, 0.745949)),
        (15, 50, 50, (0.129556, 0.511896)),
        (5, 50, 50, (0.013021, 0.269264)),
        (1, 50, 50, (0.0, 0.13489)),
        (100, 200, 1, (0.328923, 0.671076)),
        (1, 2, 50, (0.0, 1.0)),
        (0, 1, 50, (0.0, 1.0)),
    ],
    ids=["700-of-1000", "15-of-50", "5-of-50", "1-of-50", "low-t-opt", "low-trials", "no-successes"],
)
def test_bernoulli_confidence_sequence_matches_confseq(successes, trials, t_opt, expected):
    assert confidence_interval(successes, trials, 0.05, t_opt) == pytest.approx(expected, abs=1e-5)


def test_one_sided_bounds_are_tighter_than_two_sided_and_bracket_the_estimate():
    for successes, trials in ((3, 100), (55, 1000), (95, 19000), (0.4, 7.5)):
        lo, hi = lower_bound(successes, trials, 0.01), upper_bound(successes, trials, 0.01)
        lo2, hi2 = confidence_interval(successes, trials, 0.01, 1000)
        assert lo2 <= lo <= successes / trials <= hi <= hi2
    assert lower_bound(0, 500, 0.01) == 0.0 and upper_bound(0, 0, 0.01) == 1.0


def test_always_valid_false_alarm_rate_under_many_looks():
    """A true share of 5 %, looked at after every 20 requests up to 2,000 (100 looks): the one-sided bound claims
    'above 5 %' in at most alpha of the runs, while a fixed-sample test at alpha read at every look does far more."""
    from scipy.stats import binom

    rng = np.random.default_rng(7)
    alpha, p, runs, looks, every = 0.05, 0.05, 500, 100, 20
    threshold = math.log(1 / alpha)
    sequential = naive = 0
    for _ in range(runs):
        successes = np.cumsum(rng.binomial(every, p, size=looks))
        trials = every * np.arange(1, looks + 1)
        # lower bound > p exactly when the mixture at p reaches 1/alpha (the bound is where it crosses)
        if any(
            _bernoulli_log_mixture(float(s), float(n), p, 1000.0, 0.05, True) >= threshold
            for s, n in zip(successes, trials, strict=True)
        ):
            sequential += 1
        if (binom.sf(successes - 1, trials, p) < alpha).any():
            naive += 1
    assert sequential / runs <= alpha + 0.03  # 3 standard errors above alpha; typically well under it
    assert naive / runs > 2 * alpha


# --- the judge ---------------------------------------------------------------------------------------------


def figures(requests: float, error_rate: float, p99_scale: float = 1.0) -> Figures:
    """Expected counts for lognormal latencies (median 30 ms, p99 80 ms, × scale) in BOUNDS."""
    from scipy.stats import norm

    sigma = math.log(80 / 30) / norm.isf(0.01)
    cdf = [
        norm.cdf((math.log(b) - math.log(30 * p99_scale)) / sigma) if math.isfinite(b) else 1.0
        for b in BOUNDS
    ]
    bins = tuple((b, requests * (c - prev)) for b, c, prev in zip(BOUNDS, cdf, [0.0, *cdf[:-1]], strict=True))
    return Figures(requests=requests, errors=requests * error_rate, bins=bins)


def verdict_of(canary: Figures, stable: Figures) -> str:
    return sequential_verdict(canary, stable, LIMITS).verdict


def test_a_clearly_worse_canary_fails_on_few_requests():
    assert verdict_of(figures(200, 0.10), figures(4000, 0.005)) == FAIL  # 20 errors in 200 against 0.5 %
    slow = sequential_verdict(figures(500, 0.005, p99_scale=2.0), figures(10_000, 0.005), LIMITS)
    assert slow.verdict == FAIL and any(f.metric == "p99" and f.verdict == FAIL for f in slow.findings)


def test_a_healthy_canary_is_shown_non_inferior_only_on_enough_requests():
    assert verdict_of(figures(1_000, 0.005), figures(19_000, 0.005)) == INCONCLUSIVE
    assert verdict_of(figures(20_000, 0.005), figures(20_000, 0.005)) == PASS
    # too few requests: never a pass, even if the bounds were to allow it
    tight = Limits(min_requests=50_000, max_error_rate=0.01, max_latency_p99_ms=150, alpha=0.01)
    assert sequential_verdict(figures(20_000, 0.0), figures(20_000, 0.005), tight).verdict == INCONCLUSIVE


def test_no_data_is_never_a_pass_nor_undecided():
    missing = sequential_verdict(Figures(requests=None), figures(1000, 0.005), LIMITS)
    assert missing.verdict == INCONCLUSIVE and not undecided_only(missing.findings)
    no_histogram = sequential_verdict(
        Figures(requests=30_000, errors=100), Figures(requests=30_000, errors=150), LIMITS
    )
    assert no_histogram.verdict == INCONCLUSIVE and not undecided_only(no_histogram.findings)
    few = sequential_verdict(figures(50, 0.005), figures(950, 0.005), LIMITS)
    assert few.verdict == INCONCLUSIVE and not undecided_only(few.findings)
    enough = sequential_verdict(figures(1_000, 0.005), figures(19_000, 0.005), LIMITS)
    assert enough.verdict == INCONCLUSIVE and undecided_only(
        enough.findings
    )  # data, nothing shown: passes at the deadline
    evidence = next(f.evidence for f in enough.findings if f.metric == "error rate")
    assert (
        evidence["lower"] < evidence["estimate"] < evidence["upper"]
        and evidence["margin"] == LIMITS.error_rate_tolerance
    )


# --- traffic sizing ------------------------------------------------------------------------------------------


def test_sizing_shrinks_with_traffic_and_warns_when_too_little():
    small, large = (
        size_steps([5.0], 0.5, 300, 0.005, LIMITS)[0],
        size_steps([5.0], 50.0, 300, 0.005, LIMITS)[0],
    )
    assert small.canary_requests == pytest.approx(7.5) and large.canary_requests == pytest.approx(750)
    assert large.error_excess is not None and large.slower_share is not None
    assert small.error_excess is None or small.error_excess > large.error_excess
    assert detectable_error_excess(750, 14_250, 0.005, LIMITS) == large.error_excess
    assert detectable_tail_share(750, LIMITS) == large.slower_share
    assert 1.2 < large.p99_ratio < 3
    warnings = sizing_warnings([small, large], LIMITS, 300)
    assert len(warnings) >= 1 and "min-requests" in warnings[0] and "5 % step" in warnings[0]
    plenty = size_steps([50.0], 200.0, 300, 0.005, LIMITS)
    assert sizing_warnings(plenty, LIMITS, 300) == []


# --- canary-shift's polling loop, on a virtual clock -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def time(self) -> float:
        return self.now


class FakeRouter(Router):
    kind = "fake"

    def __init__(self) -> None:
        super().__init__("stable", "canary", 1.0)
        self.weights = Weights(0)

    def describe(self) -> str:
        return "fake router"

    def read(self) -> Weights:
        return self.weights

    def _write(self, weights: Weights) -> None:
        self.weights = weights


class SteadySource:
    """Expected counts at `rate` requests/s split by the router's weight; None = the source has no answer."""

    def __init__(self, router: FakeRouter, rate: float, canary_error_rate: float | None) -> None:
        self.router, self.rate, self.canary_error_rate = router, rate, canary_error_rate

    def describe(self) -> str:
        return "steady source"

    def read(self, variants: list[str], window_s: float) -> dict[str, Figures]:
        share = self.router.weights.canary / 100
        if self.canary_error_rate is None:
            return {v: Figures(requests=None) for v in variants}
        return {
            "canary": figures(self.rate * window_s * share, self.canary_error_rate),
            "stable": figures(self.rate * window_s * (1 - share), 0.005),
        }


def rollout(monkeypatch, rate: float, canary_error_rate: float | None, **options):
    from mlcicd.config import build_settings
    from mlcicd.lifecycle import RolloutRecord
    from mlcicd.stages.canary_shift import OPTIONS, Settings, make_plan
    from mlcicd.stages.canary_shift import rollout as canary_shift
    from mlcicd.stages.canary_shift.rollout import Rollout

    clock = Clock()
    monkeypatch.setattr(canary_shift, "time", clock)
    values = {o.name: o.default for o in OPTIONS} | {"judge": "sequential", "steps": (5, 50)} | options
    router = FakeRouter()
    settings = build_settings(Settings, values)
    r = Rollout(
        settings,
        router,
        SteadySource(router, rate, canary_error_rate),
        make_plan(settings),
        RolloutRecord("", ""),
    )
    r.changed = True  # no `traffic-changed` output to write
    start = clock.now
    r.run()
    return r, clock.now - start


def test_sequential_rolls_back_a_bad_canary_at_an_early_poll(monkeypatch):
    r, took = rollout(monkeypatch, rate=100, canary_error_rate=0.10)
    assert r.result == "rolled-back" and r.failures == 1
    checks = r.steps[0].checks
    assert checks[-1].counted_as == FAIL and took < 300 / 2  # well before the interval ends
    assert all(c.counted_as == "watching" for c in checks[:-1])


def test_sequential_advances_early_on_much_traffic_and_at_the_deadline_otherwise(monkeypatch):
    fast, took_fast = rollout(monkeypatch, rate=2_000, canary_error_rate=0.005)
    assert fast.result == "promoted" and took_fast < 2 * 300  # early advance in at least one step
    slow, took_slow = rollout(monkeypatch, rate=20, canary_error_rate=0.005)
    assert slow.result == "promoted" and took_slow == pytest.approx(
        2 * 300
    )  # nothing shown either way: the deadline
    assert [s.checks[-1].counted_as for s in slow.steps[:-1]] == [PASS, PASS]


def test_sequential_no_data_is_inconclusive_then_rolled_back(monkeypatch):
    r, took = rollout(monkeypatch, rate=100, canary_error_rate=None, **{"max-inconclusive": 2})
    assert r.result == "rolled-back"
    decided = [c.counted_as for c in r.steps[0].checks if c.counted_as != "watching"]
    assert decided == [INCONCLUSIVE, "fail (inconclusive)"] and took == pytest.approx(2 * 300)


def test_size_traffic_warns_about_little_traffic_and_a_plan_that_judges_nothing(monkeypatch, capsys):
    from mlcicd.config import build_settings
    from mlcicd.lifecycle import RolloutRecord
    from mlcicd.stages.canary_shift import OPTIONS, Settings, make_plan
    from mlcicd.stages.canary_shift.rollout import Rollout

    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    values = build_settings(Settings, {o.name: o.default for o in OPTIONS} | {"judge": "sequential"})
    preflight = {
        "stable": Figures(requests=3_000, errors=15),
        "canary": Figures(requests=0, errors=0),
    }  # 10 requests/s
    r = Rollout(values, FakeRouter(), None, make_plan(values), RolloutRecord("", ""))
    r.size_traffic(preflight)
    assert r.sizing["rate_per_s"] == 10 and [s["weight"] for s in r.sizing["steps"]] == [5, 25, 50]
    err = capsys.readouterr().err
    assert (
        "too little traffic to judge" in err
        and "the 5 % step gets about 150 canary requests per interval" in err
    )
    only_switch = replace(values, steps=(100,))
    Rollout(only_switch, FakeRouter(), None, make_plan(only_switch), RolloutRecord("", "")).size_traffic(
        preflight
    )
    assert "nothing will be judged" in capsys.readouterr().err


def test_the_summary_charts_of_a_sequential_rollout_have_one_value_per_label(monkeypatch, tmp_path):
    import json
    import re

    from mlcicd.stages.canary_shift.conclude import finish
    from mlcicd.stages.canary_shift.render import render_summary

    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    r, _ = rollout(monkeypatch, rate=100, canary_error_rate=0.10)
    r.settings = replace(r.settings, report=str(tmp_path / "r.json"), router={"type": "fake"}, metrics={})
    finish(r, Weights(0), {})
    summary = render_summary(json.loads((tmp_path / "r.json").read_text()))
    charts = re.findall(r"```mermaid\n(.*?)```", summary, re.S)
    assert len(charts) == 2 and "Sequential judge, error rate" in summary
    for chart in charts:
        labels = len(re.search(r"x-axis \"\w+\" \[(.*?)\]", chart).group(1).split(","))
        series = [len(values.split(",")) for values in re.findall(r"(?:bar|line) \[(.*?)\]", chart)]
        assert series and all(n == labels for n in series), chart

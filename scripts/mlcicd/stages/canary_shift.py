"""canary-shift: move traffic to a new model step by step, judge each step, roll back by itself.

At each step the router gets the canary's share and is read back; after `interval` the metrics
of both variants over the step are judged (absolute limits, canary vs stable, or both). A pass
moves on; a failure, or too many inconclusive checks in a row, counts toward `failure-limit`,
and reaching it rolls back (canary 0 %, verified) or freezes the weight. The last step (100 %)
is the switch. A cancelled job (SIGINT/SIGTERM) restores stable before it exits, and so does
an unexpected error: nothing is left half-shifted without a loud message saying so.

State is recorded on the model version as tags (`mlcicd.canary.state`, `.weight`, `.updated`),
so a later job can see what happened; `mode: restore` puts all traffic back on stable.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlcicd import __version__, github
from mlcicd.config import Option, Stage, boolean, choice, duration, number, text, whole_number
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.judge import FAIL, INCONCLUSIVE, JUDGES, PASS, Figures, Finding, Limits, Verdict, judge
from mlcicd.lifecycle import RUNNING, Deployer, RolloutRecord, abort_applies, busy_canary_message, gate_decision, make_deployer
from mlcicd.metric_sources import METRICS_EXAMPLE, MetricsError, QueryError, make_source, metrics_spec
from mlcicd.registry import version_number
from mlcicd.report import check_report_path, default_report_path, fmt, markdown_table, write_json
from mlcicd.routers import ROUTER_EXAMPLE, Router, RouterError, RouterRefused, Weights, make_router, router_spec
from mlcicd.sequential import sequential_verdict, size_steps, sizing_warnings, undecided_only

NAME = "canary-shift"
STRATEGIES = ("canary", "linear", "blue-green", "shadow")
MODES = ("shift", "restore", "abort", "rollback")
DEFAULT_STEPS = (5, 25, 50, 100)
LINEAR_STEP = 10
ABORTED = "aborted"
WATCHING = "watching"
"""A sequential poll that decided nothing yet: the step goes on."""
RESTORE_ATTEMPTS = 2
"""Restoring stable while a job is being cancelled: GitHub sends SIGKILL about 7.5 s after SIGINT."""


def steps_list(value: Any) -> tuple[int, ...]:
    """`5,25,50,100` or a YAML list → whole percentages, strictly increasing, within 1..100."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    items = list(value) if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    steps = []
    for item in items:
        text_item = str(item).strip().rstrip("%")
        if isinstance(item, bool) or not text_item.isdigit():
            raise ValueError(f"{item!r} is not a whole percentage (steps look like 5,25,50,100)")
        steps.append(int(text_item))
    if any(not 1 <= s <= 100 for s in steps):
        raise ValueError(f"{','.join(map(str, steps))}: every step must be between 1 and 100")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"{','.join(map(str, steps))}: steps must increase")
    return tuple(steps)


OPTIONS = (
    Option(
        "strategy", choice(*STRATEGIES), "canary", "canary (steps), linear (step-weight up to max-weight), blue-green or shadow", "linear"
    ),
    Option("steps", steps_list, (), "canary weights in percent; 100 is added when missing", "10,50,100", shown_default="5,25,50,100"),
    Option("step-weight", whole_number(maximum=100), 0, "linear steps of this many percent (instead of steps); linear default 10", "10"),
    Option("max-weight", whole_number(minimum=1, maximum=100), 50, "with step-weight: the last step before the switch to 100", "50"),
    Option("interval", duration, 300.0, "time between checks (the analysis window of one check)", "30s", shown_default="5m"),
    Option("min-requests", whole_number(), 100, "requests a variant must serve in a window before it is judged", "500"),
    Option("max-error-rate", number(minimum=0, maximum=1), 0.01, "threshold judge: highest canary error rate (0.01 = 1 %)", "0.02"),
    Option(
        "max-latency-p99-ms",
        number(minimum=0),
        150.0,
        "threshold judge: highest canary p99 in ms; 0 = no latency limit",
        "250",
        aliases=("max-latency-p99",),
    ),
    Option(
        "judge",
        choice(*JUDGES),
        "both",
        "threshold (absolute limits), statistical (canary vs stable), both, or sequential (canary vs stable at every poll, decides early)",
        "sequential",
    ),
    Option(
        "poll",
        duration,
        15.0,
        "sequential judge: how often metrics are read and judged; interval is then the longest a step may take",
        "10s",
        shown_default="15s",
    ),
    Option(
        "alpha",
        number(positive=True, maximum=0.5),
        0.01,
        "chance of rolling back a healthy canary over the whole rollout (split over its tests)",
        "0.001",
    ),
    Option(
        "error-rate-tolerance",
        number(minimum=0, maximum=1),
        0.005,
        "statistical judge: how much worse (absolute) the canary's error rate may be",
        "0.01",
    ),
    Option("latency-tolerance", number(minimum=0), 0.2, "statistical judge: how much higher (relative) the canary's p99 may be", "0.5"),
    Option("failure-limit", whole_number(minimum=1), 1, "failed checks before on-failure happens", "3"),
    Option(
        "max-inconclusive",
        whole_number(minimum=1),
        3,
        "inconclusive checks in a row (too little traffic, no metrics) that count as a failure",
        "5",
    ),
    Option(
        "on-failure",
        choice("rollback", "freeze"),
        "rollback",
        "rollback (canary 0 %) or freeze (keep the weight, for a human to look)",
        "freeze",
    ),
    Option(
        "router",
        router_spec,
        {},
        "the traffic router (YAML mapping): type http|haproxy (address, route/backend) or gateway-api|istio|kserve (namespace, name)",
        ROUTER_EXAMPLE,
    ),
    Option(
        "metrics",
        metrics_spec,
        {},
        "the metrics source (YAML mapping): type prometheus|http, address, queries",
        METRICS_EXAMPLE,
        shown_default="none",
    ),
    Option("model-name", text, "", "registered model whose version is rolled out (state is tagged on it)", "churn"),
    Option("version", version_number, "", "the model version behind the canary", "7"),
    Option(
        "deploy-command",
        text,
        "",
        "shell command that puts the version on a server, with MODEL_URI, MODEL_NAME, MODEL_VERSION and DEPLOY_TARGET "
        "(canary before traffic moves, stable at the handoff); empty = you deploy the canary, and it keeps 100 % at the end",
        "./deploy.sh",
    ),
    Option("deploy-timeout", duration, 900.0, "the longest one run of deploy-command may take", "30m", shown_default="15m"),
    Option(
        "mode",
        choice(*MODES),
        "shift",
        "shift: run the rollout; restore: all traffic to stable; abort: stop a running or frozen rollout; "
        "rollback: put @previous-production on stable (needs deploy-command)",
        "restore",
    ),
    Option(
        "force",
        boolean,
        False,
        "roll out a version whose check-gates verdict is missing or failed; needs a reason, recorded in the history",
        "true",
    ),
    Option("reason", text, "", "why (required with force; recorded in the history with mode restore, abort and rollback too)", "'hotfix'"),
    Option("dry-run", boolean, False, "check router, metrics, gates and plan; change nothing", "true"),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/canary-shift.json", is_path=True),
)


# --- the plan ---------------------------------------------------------------------------------


def make_plan(values: dict[str, Any]) -> list[Weights]:
    """The weights the rollout goes through; the last is always the switch to 100 %."""
    strategy, steps, step_weight = values["strategy"], values["steps"], values["step-weight"]
    if steps and step_weight:
        raise UsageError("conflicting options", "give `steps` or `step-weight` (+ `max-weight`), not both.")
    if strategy == "shadow":
        if steps or step_weight:
            raise UsageError(
                "option not used by shadow", "shadow mirrors all traffic to the canary, then switches: drop `steps`/`step-weight`."
            )
        return [Weights(0, shadow=100), Weights(100)]
    if strategy == "blue-green":
        warm_up = steps[0] if steps else (step_weight or DEFAULT_STEPS[0])
        if len(steps) > 1:
            raise UsageError("option not used by blue-green", "blue-green takes one warm-up share, e.g. `steps: 5`, then switches to 100.")
        if warm_up >= 100:
            # A warm-up of 100 % would be the switch itself, with nothing judged before it.
            raise UsageError(
                "blue-green warm-up of 100 %", "the warm-up share comes before the switch to 100: give one below 100, e.g. `steps: 5`."
            )
        return [Weights(warm_up), Weights(100)]
    if strategy == "linear" or step_weight:
        if steps:
            raise UsageError(
                "option not used by linear", "linear steps by `step-weight` up to `max-weight`; for explicit `steps` use strategy canary."
            )
        size = step_weight or LINEAR_STEP
        top = values["max-weight"]
        if size > top:
            raise UsageError("step-weight above max-weight", f"step-weight {size:g} is above max-weight {top:g}.")
        weights = list(range(size, top + 1, size))
    else:
        weights = list(steps or DEFAULT_STEPS)
    if weights[-1] != 100:
        weights.append(100)
    return [Weights(w) for w in weights]


# --- what happened ------------------------------------------------------------------------------


@dataclass
class CheckRecord:
    weight: Weights
    at: float
    window_s: float
    canary: Figures
    stable: Figures
    verdict: Verdict
    counted_as: str
    """What the check did to the rollout: pass, fail, inconclusive (wait), or fail after too many inconclusive."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.canary,
            "shadow": self.weight.shadow,
            "at": self.at,
            "window_s": round(self.window_s, 3),
            "canary": self.canary.as_dict(),
            "stable": self.stable.as_dict(),
            "verdict": self.verdict.verdict,
            "counted_as": self.counted_as,
            "reasons": self.verdict.reasons,
            "findings": [vars(f) for f in self.verdict.findings],
        }


@dataclass
class StepRecord:
    weight: Weights
    started: float
    ended: float | None = None
    checks: list[CheckRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.canary,
            "shadow": self.weight.shadow,
            "started": self.started,
            "ended": self.ended,
            "checks": [c.as_dict() for c in self.checks],
        }


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """While stable is being restored, a second SIGINT/SIGTERM must not abort the restore."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def per_test_alpha(alpha: float, plan: list[Weights], judge_kind: str) -> float:
    """`alpha` is the false-rollback budget of the whole rollout, not of one test: a healthy canary
    meets every test at every judged step, and 0.01 per test over 3 steps × 4 tests would roll back
    about one in twenty. Bonferroni: each test runs at alpha / (judged steps × tests per check)."""
    judged = max(1, sum(1 for w in plan if w.canary < 100))
    # error rate and latency, per judge; sequential: its bounds, and the fixed-sample tests at the end of an interval
    tests = 2 * (2 if judge_kind in ("both", "sequential") else 1)
    return alpha / (judged * tests)


class Rollout:
    def __init__(self, values: dict[str, Any], router: Router, source: Any, plan: list[Weights], registry: RolloutRecord) -> None:
        self.values, self.router, self.source, self.plan, self.registry = values, router, source, plan, registry
        self.judge_kind = "statistical" if values["strategy"] == "shadow" else values["judge"]
        self.limits = Limits(
            min_requests=values["min-requests"],
            max_error_rate=values["max-error-rate"],
            max_latency_p99_ms=values["max-latency-p99-ms"],
            alpha=per_test_alpha(values["alpha"], plan, self.judge_kind),
            error_rate_tolerance=values["error-rate-tolerance"],
            latency_tolerance=values["latency-tolerance"],
        )
        self.steps: list[StepRecord] = []
        self.sizing: dict[str, Any] | None = None
        """What the measured request rate lets each step detect (size_traffic)."""
        self.failures = 0
        self.verified: Weights | None = None
        """The last weights the router confirmed; None once a change could not be verified."""
        self.changed = False
        self.result = ""
        self.message = ""
        self.recorded: dict[str, str] | None = None
        """What a previous run recorded on the model version (mode restore)."""
        self.deployer: Deployer | None = None
        """Set when `deploy-command` is: the handoff puts the version on stable at the end."""
        self.stable_version: str | None = None
        """The version on the stable server before this rollout, as the registry knows it."""
        self.handing_off = False
        self.started = time.time()

    # -- traffic --

    def move(self, weights: Weights, attempts: int | None = None) -> None:
        if not self.changed:
            self.changed = True
            github.set_outputs({"traffic-changed": "true"})  # the action's restore step keys on this
        self.verified = None
        self.verified = self.router.set(weights, **({"attempts": attempts} if attempts else {}))
        if 0 < weights.canary < 100 or weights.shadow:
            self.registry.record(RUNNING, self.verified.canary)  # the end states are recorded by the caller

    def reassert(self, weights: Weights) -> None:
        """A router that lost its weights (an HAProxy reload without a server-state-file) gets them again."""
        now = self.router.get()
        if abs(now.canary - weights.canary) > 1e-6 or abs(now.shadow - weights.shadow) > 1e-6:
            github.warning(
                f"{self.router.describe()} had {now.describe()} instead of {weights.describe()} (reloaded?); set it again. "
                "Keep weights across HAProxy reloads with `server-state-file` (see docs/actions/canary-shift.md).",
                title=f"{NAME}: router weights changed behind the rollout",
            )
            self.move(weights)

    def restore(self, attempts: int | None = None) -> bool:
        """Canary 0 %, verified. False when the router would not confirm it."""
        with signals_held():
            try:
                self.move(Weights(0), attempts)
                return True
            except RouterError as exc:
                self.message += f" Restoring stable failed too: {exc}."
                return False

    # -- analysis --

    def read(self, window_s: float) -> tuple[Figures, Figures, Finding | None]:
        try:
            figures = self.source.read([self.router.stable, self.router.canary], window_s)
            return figures[self.router.canary], figures[self.router.stable], None
        except (MetricsError, QueryError) as exc:
            missing = Figures(requests=None)
            return missing, missing, Finding("source", "metrics", INCONCLUSIVE, f"{self.source.describe()} gave no answer: {exc}")

    def analyse(self, step: StepRecord) -> str:
        """Check every interval until the step passes (PASS) or failures reach failure-limit (FAIL)."""
        if self.judge_kind == "sequential":
            return self.watch(step)
        window_start = step.started
        streak = 0
        while True:
            time.sleep(self.values["interval"])
            now = time.time()
            if abort_applies(self.registry.abort_request(), self.started):
                return ABORTED
            self.reassert(step.weight)
            canary, stable, problem = self.read(now - window_start)
            verdict = Verdict(INCONCLUSIVE, [problem]) if problem else judge(self.judge_kind, canary, stable, self.limits)
            counted = verdict.verdict
            if counted == INCONCLUSIVE:
                streak += 1
                if streak >= self.values["max-inconclusive"]:
                    counted = "fail (inconclusive)"
            else:
                streak = 0
            step.checks.append(CheckRecord(step.weight, now, now - window_start, canary, stable, verdict, counted))
            self._log(step.checks[-1])
            if counted == PASS:
                return PASS
            if counted == INCONCLUSIVE:
                continue
            self.failures += 1
            streak = 0
            window_start = now  # judge the next check on fresh data, not on the window that failed
            if self.failures >= self.values["failure-limit"]:
                return FAIL

    def watch(self, step: StepRecord) -> str:
        """The sequential judge: read and judge every `poll`; leave the step as soon as the canary is shown worse
        (FAIL) or non-inferior on min-requests (PASS). At `interval` after the window started, an undecided step is
        judged by `statistical`'s fixed-sample tests; one without data is inconclusive and gets another interval, as
        with the other judges. The bounds are anytime-valid, so polling often costs no false rollbacks."""
        window_start = step.started
        deadline = window_start + self.values["interval"]
        streak = 0
        while True:
            time.sleep(max(0.0, min(self.values["poll"], deadline - time.time())))
            now = time.time()
            if abort_applies(self.registry.abort_request(), self.started):
                return ABORTED
            self.reassert(step.weight)
            canary, stable, problem = self.read(now - window_start)
            verdict = Verdict(INCONCLUSIVE, [problem]) if problem else sequential_verdict(canary, stable, self.limits)
            if verdict.verdict == INCONCLUSIVE and now >= deadline - 1e-6 and undecided_only(verdict.findings):
                # The interval is over and the bounds decided nothing: the fixed-sample tests of `statistical` judge the
                # whole window, as at the end of a fixed interval. Anytime-valid bounds pay for looking at every poll
                # with width; alone, they would pass a canary 5 points worse at a few hundred requests.
                fixed = judge("statistical", canary, stable, self.limits)
                verdict = Verdict(fixed.verdict, verdict.findings + fixed.findings)
            counted = verdict.verdict
            if counted == INCONCLUSIVE:
                if now < deadline - 1e-6:
                    counted = WATCHING
                else:
                    streak += 1
                    deadline = now + self.values["interval"]
                    if streak >= self.values["max-inconclusive"]:
                        counted = "fail (inconclusive)"
            step.checks.append(CheckRecord(step.weight, now, now - window_start, canary, stable, verdict, counted))
            if counted != WATCHING:
                self._log(step.checks[-1])
            if counted == PASS:
                return PASS
            if counted in (WATCHING, INCONCLUSIVE):
                continue
            self.failures += 1
            streak = 0
            window_start, deadline = now, now + self.values["interval"]  # a fresh test on fresh data
            if self.failures >= self.values["failure-limit"]:
                return FAIL

    def size_traffic(self, preflight: dict[str, Figures]) -> None:
        """Before any traffic moves: the request rate over the last interval, what each judged step will see, and a
        warning where that is too little for the options (or where nothing is judged at all)."""
        interval = self.values["interval"]
        judged = [w.canary for w in self.plan if w.canary < 100 and not w.shadow]
        if not any(w.canary < 100 for w in self.plan):
            github.warning(
                "the plan is a single switch to 100 %: nothing is judged before all traffic reaches the canary. "
                "Give steps below 100 (e.g. `steps: 5,25,50`) for a canary that can be rolled back.",
                title=f"{NAME}: nothing will be judged",
            )
        counts = [f.requests for f in preflight.values()]
        if not judged or not counts or any(c is None for c in counts):
            self.sizing = {"rate_per_s": None, "steps": []}
            return
        rate = sum(counts) / interval
        errors = [f.errors for f in preflight.values() if f.errors is not None]
        base = sum(errors) / sum(counts) if errors and sum(counts) else 0.0
        sizes = size_steps(judged, rate, interval, base, self.limits)
        self.sizing = {"rate_per_s": round(rate, 3), "base_error_rate": round(base, 6), "steps": [z.as_dict() for z in sizes]}
        for z in sizes:
            print(
                f"[{NAME}] canary {z.weight:g} %: ~{z.canary_requests:,.0f} canary requests per interval; {_detectable(z.as_dict())}",
                flush=True,
            )
        warnings = sizing_warnings(sizes, self.limits, interval)
        if self.judge_kind != "sequential":  # the detectable regressions are the sequential bounds'
            warnings = [w for w in warnings if "min-requests" in w]
        if warnings:
            github.warning(
                f"at {rate:,.1f} requests/s (measured over the last {interval:g} s): " + "; ".join(warnings) + ". "
                "Raise the step weights or `interval`, or lower `min-requests`; see 'How much traffic a canary needs' in "
                "docs/actions/canary-shift.md.",
                title=f"{NAME}: too little traffic to judge",
            )

    def _log(self, check: CheckRecord) -> None:
        c, s = check.canary, check.stable
        print(
            f"[{NAME}] {check.weight.describe()}: {check.counted_as.upper()} — requests canary {fmt(c.requests, 0)} / stable {fmt(s.requests, 0)}, "
            f"error rate {_pct(c.error_rate)} / {_pct(s.error_rate)}, p99 {_ms(c.p99_ms)} / {_ms(s.p99_ms)}"
            + (f"; {'; '.join(check.verdict.reasons)}" if check.verdict.reasons else ""),
            flush=True,
        )

    # -- the whole rollout --

    def run(self) -> None:
        for weights in self.plan:
            step = StepRecord(weights, time.time())
            self.steps.append(step)
            self.move(weights)
            print(f"[{NAME}] {self.router.describe()}: {weights.describe()} (verified)", flush=True)
            if weights.canary >= 100:
                step.ended = time.time()
                judged = f"after {len(self.plan) - 1} judged step(s)"
                if self.deployer is not None:
                    self.handoff(judged)
                    return
                self.result = "promoted"
                self.message = (
                    f"the canary serves 100 % of traffic {judged}. Without `deploy-command` it keeps it: the stable server was not updated."
                )
                self.registry.record("promoted", 100)
                self.registry.event(
                    "rollout promoted (canary keeps 100 %)", self.stable_version, self.registry.version, self.values["reason"]
                )
                return
            outcome = self.analyse(step)
            step.ended = time.time()
            if outcome == ABORTED:
                self.abort(step)
                return
            if outcome == FAIL:
                self._fail(step)
                return

    def handoff(self, judged: str) -> None:
        """As Flagger promotes: the canary carries everything while the version goes onto the stable
        server, which is checked before all traffic returns to it; the canary is left empty."""
        assert self.deployer is not None
        version = self.deployer.version
        self.handing_off = True
        step = StepRecord(Weights(0), time.time())
        failure = self.deployer.run("stable") or self.router.unhealthy(self.router.stable)
        if failure:
            step.ended = time.time()
            self.result = "handoff-failed"
            self.message = (
                f"version {version} passed {judged} and serves 100 % of traffic from the canary, but the handoff to stable failed: "
                f"{failure}. The canary keeps all traffic (the judged version); @production is unchanged. Fix the stable server, "
                "rerun the rollout with `mode: restore` once it serves a good model, then roll the version out again."
            )
            self.registry.record("handoff-failed", 100)
            return
        self.steps.append(step)
        self.move(Weights(0))
        step.ended = time.time()
        self.handing_off = False
        if self.values["mode"] == "rollback":
            self.result = "rolled-back"
            self.message = (
                f"rolled back: version {version} (@previous-production) is on the stable server and takes all traffic "
                f"(canary 0 %, verified); it was {self.stable_version or 'unknown'}. promote's mode rollback moves @production next."
            )
            self.registry.record("rolled-back", 0, stable=version)
            self.registry.event("rollback", self.stable_version, version, self.values["reason"])
            return
        self.result = "promoted"
        self.message = (
            f"version {version} passed {judged}; it is on the stable server, which takes all traffic again (canary 0 %, verified)."
        )
        self.registry.record("promoted", 0, stable=version)
        self.registry.event("rollout promoted", self.stable_version, version, self.values["reason"])

    def abort(self, step: StepRecord) -> None:
        request = self.registry.abort_request() or {}
        who = request.get("actor") or "someone"
        self.message = f"aborted at {step.weight.describe()} by {who} ({request.get('reason') or 'no reason given'})."
        if self.restore():
            self.result = "aborted"
            self.message += " Traffic is back on stable (verified)."
            self.registry.record("aborted", 0)
            self.registry.event("rollout aborted", self.registry.version, self.stable_version, request.get("reason") or "")
        else:
            self.registry.record("failed", None)
        self.registry.clear_abort()

    def _fail(self, step: StepRecord) -> None:
        reasons = "; ".join(step.checks[-1].verdict.reasons) or "too many inconclusive checks"
        if step.checks[-1].counted_as == "fail (inconclusive)":
            reasons = f"{self.values['max-inconclusive']} inconclusive checks in a row ({reasons})"
        if self.values["on-failure"] == "freeze":
            self.result = "frozen"
            self.message = f"frozen at {step.weight.describe()} after {self.failures} failed check(s): {reasons}."
            self.registry.record("frozen", step.weight.canary)
            return
        self.message = f"rolled back from {step.weight.describe()} after {self.failures} failed check(s): {reasons}."
        if self.restore():
            self.result = "rolled-back"
            self.registry.record("rolled-back", 0)
            self.registry.event("rollout rolled back", self.registry.version, self.stable_version, reasons[:300])
        else:
            self.registry.record("failed", None)

    def unwind(self, why: str) -> None:
        """Cancelled or crashed mid-rollout: stable first, then the record."""
        self.message = why
        if self.handing_off:
            # The stable server may be half way through its deploy: the judged canary keeps the traffic.
            self.result = "handoff-failed"
            self.message += " It was handing over to stable: the canary keeps all traffic; rerun with `mode: restore` once stable is good."
            self.registry.record("handoff-failed", 100)
        elif self.changed and self.result != "promoted":
            if self.restore(attempts=RESTORE_ATTEMPTS):
                self.result = "rolled-back"
                self.message += " Traffic is back on stable (verified)."
                self.registry.record("rolled-back", 0)
            else:
                self.registry.record("failed", None)
        for step in self.steps:
            step.ended = step.ended or time.time()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f} ms"


# --- the stage ----------------------------------------------------------------------------------


def _router(values: dict[str, Any]) -> Router:
    if not values["router"]:
        raise UsageError("missing router", f"set `router`, e.g. `{ROUTER_EXAMPLE}` (see docs/actions/canary-shift.md).")
    try:
        return make_router(values["router"])
    except ValueError as exc:
        raise UsageError("invalid value for router", f"{exc}. Example: `{ROUTER_EXAMPLE}`.") from None


def _read_router(router: Router) -> Weights:
    """Reach the router before anything changes: a wrong address is exit 2, and so is a router that
    refuses (a Kubernetes object missing, a route without both backends, no permission to patch it)."""
    try:
        router.preflight()
        return router.get()
    except RouterRefused as exc:
        raise UsageError("router refused", f"{exc}. Nothing was changed.") from None
    except RouterError as exc:
        raise UsageError(
            "router unreachable",
            f"{exc}. Check `router.address` (or the kubeconfig's server) and that {router.describe()} is up; nothing was changed.",
        ) from None


def _preflight(router: Router, source: Any, values: dict[str, Any]) -> dict[str, Figures]:
    """Reach the metrics source before anything changes: a wrong address or query is exit 2."""
    try:
        figures = source.read([router.stable, router.canary], values["interval"])
    except QueryError as exc:
        raise UsageError("invalid metrics query", f"{exc}. Fix `metrics.queries`; nothing was changed.") from None
    except MetricsError as exc:
        raise UsageError(
            "metrics source unreachable", f"{exc}. Check `metrics.address` and that {source.describe()} is up; nothing was changed."
        ) from None
    return figures


def _check_pairing(values: dict[str, Any], router: Router) -> None:
    """Option combinations that cannot work, before anything is read or changed."""
    mode, name = values["mode"], values["model-name"]
    if router.deploys and values["deploy-command"]:
        raise UsageError(
            "deploy-command with a router that deploys", f"drop `deploy-command`: the {router.kind} router deploys the version itself."
        )
    if router.deploys and mode == "shift" and not name:
        raise UsageError(f"the {router.kind} router needs the model", "give `model-name` and `version`: it deploys that version.")
    if values["version"] and not name:
        raise UsageError("version without model-name", "give `model-name` too: `version` is a version of that registered model.")
    if mode == "shift" and bool(name) != bool(values["version"]):
        raise UsageError("model-name and version go together", "give both `model-name` and `version` (the canary's model), or neither.")
    if mode in ("abort", "rollback") and not name:
        raise UsageError(f"{mode} needs model-name", f"give `model-name`: mode {mode} reads the model's rollout record in the registry.")
    if values["deploy-command"] and mode == "shift" and not name:
        raise UsageError("deploy-command needs the model", "give `model-name` and `version`: the deploy command gets MODEL_URI from them.")
    if mode == "rollback" and not values["deploy-command"] and not router.deploys:
        raise UsageError(
            "rollback needs deploy-command",
            "set `deploy-command`: a rollback puts @previous-production on the canary, then on the stable server.",
        )
    if values["force"] and not values["reason"].strip():
        raise UsageError("force without a reason", "give `reason` with `force: true`; it is recorded in the model's history.")


def run(values: dict[str, Any]) -> int:
    from mlcicd import metric_sources, routers

    for name in (routers.TOKEN_ENV, metric_sources.TOKEN_ENV):
        if os.environ.get(name):
            github.add_mask(os.environ[name])  # before anything can print it (a router echoing a header, a traceback)
    router = _router(values)
    _check_pairing(values, router)
    if values["mode"] == "restore":
        return restore_stable(values, router)
    if values["mode"] == "abort":
        return abort_rollout(values, router)
    if values["mode"] == "rollback":
        return roll_back(values, router)
    if not values["metrics"]:
        raise UsageError("missing metrics", f"set `metrics`, e.g. `{METRICS_EXAMPLE}` (see docs/actions/canary-shift.md).")
    plan = make_plan(values)
    if values["strategy"] == "shadow" and not router.supports_shadow:
        raise UsageError(
            "strategy not supported by router",
            f"the {router.kind} router cannot mirror traffic, which shadow needs. Use strategy canary or blue-green, "
            "or the http router in front of a proxy that mirrors (Envoy, NGINX `mirror`).",
        )
    source = make_source(values["metrics"])
    check_report_path(values["report"])
    registry = RolloutRecord(values["model-name"], values["version"])
    registry.connect()  # read-only until traffic moves: a dry run checks the gate verdict too
    before = _read_router(router)
    rollout = Rollout(values, router, source, plan, registry)
    rollout.recorded = registry.current()
    rollout.stable_version = (rollout.recorded or {}).get("stable") or registry.alias("production")
    from mlcicd import tracking

    gates = None
    if values["model-name"]:
        verdict = (registry.version_tags() or {}).get(tracking.TAG_GATES_PASSED)
        gates = gate_decision(verdict, force=values["force"], reason=values["reason"], name=values["model-name"], version=values["version"])
        if not gates.allowed:
            rollout.result, rollout.message = "refused", gates.message
            return finish(rollout, values, before, {})
    busy = busy_canary_message(before, router.describe(), rollout.recorded)
    if busy:
        raise UsageError("canary already has traffic", busy)
    preflight = _preflight(router, source, values)
    rollout.deployer = make_deployer(router, values["deploy-command"], values["model-name"], values["version"], values["deploy-timeout"])
    rollout.size_traffic(preflight)
    if values["dry-run"]:
        rollout.result = "dry-run"
        handoff = "then the handoff to stable" if rollout.deployer else "and the canary keeps 100 % (no deploy-command)"
        rollout.message = (
            f"dry run: router and metrics answer; the plan is {', '.join(w.describe() for w in plan)}, {handoff}. "
            + (gates.message + " " if gates and gates.override else "")
            + "Nothing was changed."
        )
        return finish(rollout, values, before, preflight)
    if gates and gates.override:
        github.warning(gates.message, title=f"{NAME}: gates overridden")
        registry.event("forced rollout (gates overridden)", rollout.stable_version, values["version"], values["reason"])
    return drive(rollout, before, preflight, first_deploy=True)


def drive(rollout: Rollout, before: Weights, preflight: dict[str, Figures], *, first_deploy: bool) -> int:
    """Re-assert the weights a rollout starts from, deploy the canary, run the plan; unwind on any failure."""
    values = rollout.values
    try:
        # A reloaded router (HAProxy without a server-state-file) may hold other weights than the ones
        # it was last given: the rollout starts from the ones it expects, verified.
        rollout.router.set(Weights(0))
        if rollout.deployer is not None and first_deploy:
            failure = rollout.deployer.run("canary")
            if failure:
                rollout.result = "deploy-failed"
                rollout.message = f"{failure}. No traffic moved: stable serves everything, as before."
                rollout.registry.record("deploy-failed", 0)
                return finish(rollout, values, before, preflight)
        rollout.run()
    except KeyboardInterrupt:
        rollout.unwind("the job was cancelled mid-rollout.")
        finish(rollout, values, before, preflight, cancelled=True)
        raise KeyboardInterrupt(rollout.message) from None
    except RouterError as exc:
        rollout.unwind(f"the router failed mid-rollout: {exc}.")
    except BaseException as exc:
        rollout.unwind(f"unexpected error {type(exc).__name__}: {exc}.")
        finish(rollout, values, before, preflight, cancelled=True)
        raise
    return finish(rollout, values, before, preflight)


def _connect_or_warn(registry: RolloutRecord) -> None:
    try:
        registry.connect()
    except Exception as exc:  # noqa: BLE001 - traffic is restored; the record is secondary
        detail = exc.message if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"
        github.warning(f"{detail} The canary state was not recorded.", title=f"{NAME}: registry unavailable")
        registry.client = None


def restore_stable(values: dict[str, Any], router: Router) -> int:
    """`mode: restore`: all traffic to stable, verified; for a job that died mid-rollout.
    Traffic first: a registry that is down must not keep the canary serving."""
    check_report_path(values["report"])
    before = _read_router(router)
    registry = RolloutRecord(values["model-name"], values["version"])
    rollout = Rollout(values, router, None, [], registry)
    if values["dry-run"]:
        rollout.result = "dry-run"
        rollout.message = f"dry run: {router.describe()} has {before.describe()}; a restore would set canary 0 %. Nothing was changed."
        return finish(rollout, values, before, {})
    rollout.steps.append(StepRecord(Weights(0), time.time()))
    restored = rollout.restore()
    rollout.steps[-1].ended = time.time()
    _connect_or_warn(registry)
    if registry.client is not None and not registry.version:
        registry.version = str((registry.current() or {}).get("version") or "")
    rollout.recorded = registry.recorded()
    if restored:
        rollout.result = "rolled-back"
        rollout.message = f"restored: {router.describe()} had {before.describe()}, now canary 0 % (verified)."
        if rollout.recorded:
            last = rollout.recorded
            rollout.message += f" The previous run had recorded `{last.get('state', '?')}` at canary {last.get('weight', '?')} % ({last.get('updated', '?')})."
        registry.record("rolled-back", 0)
        registry.event("restore", registry.version or None, (registry.current() or {}).get("stable"), values["reason"] or rollout.message)
    else:
        registry.record("failed", None)
    return finish(rollout, values, before, {})


def abort_rollout(values: dict[str, Any], router: Router) -> int:
    """`mode: abort`: a running rollout is asked to roll back (through the registry, which it reads at
    every check) and given one interval to do it; a frozen or dead one is rolled back here."""
    check_report_path(values["report"])
    registry = RolloutRecord(values["model-name"], values["version"])
    registry.connect()
    current = registry.current() or {}
    registry.version = registry.version or str(current.get("version") or "")
    before = _read_router(router)
    rollout = Rollout(values, router, None, [], registry)
    rollout.recorded = current or None
    stable = current.get("stable")
    running = current.get("state") == RUNNING and str(current.get("version")) == registry.version
    if values["dry-run"]:
        rollout.result = "dry-run"
        what = f"ask the running rollout of version {registry.version} to roll back" if running else "set canary 0 %"
        rollout.message = f"dry run: {router.describe()} has {before.describe()}; abort would {what}. Nothing was changed."
        return finish(rollout, values, before, {})
    registry.request_abort(values["reason"])
    if running:
        deadline = time.monotonic() + values["interval"] + 60
        print(f"[{NAME}] asked the running rollout of version {registry.version} to roll back; waiting for it", flush=True)
        while time.monotonic() < deadline and (registry.current() or {}).get("state") == RUNNING:
            time.sleep(2)
        ended = (registry.current() or {}).get("state")
        if ended in (ABORTED, "promoted", "rolled-back"):
            # It ended by itself: aborted (it saw the request), or finished before its next check.
            registry.clear_abort()
            rollout.verified = _read_router(router)
            rollout.result = ABORTED
            rollout.message = (
                f"the running rollout of version {registry.version} saw the abort and put all traffic back on stable."
                if ended == ABORTED
                else f"the rollout of version {registry.version} ended `{ended}` before it saw the abort; "
                f"{router.describe()} has {rollout.verified.describe()}."
            )
            return finish(rollout, values, before, {})
    # Frozen, handed over half way, or a job that no longer answers: stable gets everything from here.
    rollout.steps.append(StepRecord(Weights(0), time.time()))
    restored = rollout.restore()
    rollout.steps[-1].ended = time.time()
    registry.clear_abort()
    if restored:
        rollout.result = ABORTED
        rollout.message = f"aborted: {router.describe()} had {before.describe()}, now canary 0 % (verified)."
        if registry.version:
            registry.record(ABORTED, 0)
        registry.event("rollout aborted", registry.version or None, stable, values["reason"])
    else:
        registry.record("failed", None)
    return finish(rollout, values, before, {})


def roll_back(values: dict[str, Any], router: Router) -> int:
    """`mode: rollback`: @previous-production onto the stable server, the way a rollout hands over
    (canary, switch, stable, back), without judging: it was production before. promote's mode
    rollback then moves the alias, so what is served and @production agree."""
    check_report_path(values["report"])
    name = values["model-name"]
    registry = RolloutRecord(name, "")
    registry.connect()
    target, current = registry.alias("previous-production"), registry.alias("production")
    before = _read_router(router)
    rollout = Rollout({**values, "version": target or ""}, router, None, [Weights(100)], registry)
    rollout.stable_version = current
    rollout.recorded = registry.current()
    if not target or target == current:
        rollout.result = "refused"
        why = "`previous-production` is not set" if not target else f"`previous-production` is version {target}, already `production`"
        rollout.message = (
            f"`{name}` cannot roll back: {why}. Use `mode: shift` with the `version` of a known-good model instead (a full rollout)."
        )
        return finish(rollout, values, before, {})
    registry.version = target
    if values["dry-run"]:
        rollout.result = "dry-run"
        rollout.message = (
            f"dry run: a rollback would put version {target} on the canary, switch, hand it to stable; @production is {current}."
        )
        return finish(rollout, values, before, {})
    if before.canary or before.shadow:
        rollout.restore()  # whatever the canary serves now, it goes first
    rollout.deployer = make_deployer(router, values["deploy-command"], name, target, values["deploy-timeout"])
    return drive(rollout, before, {}, first_deploy=True)


def finish(rollout: Rollout, values: dict[str, Any], before: Weights, preflight: dict[str, Figures], *, cancelled: bool = False) -> int:
    """Report, outputs, summary and the one annotation; `cancelled`: the caller re-raises, and the CLI annotates."""
    final = rollout.verified.canary if rollout.verified is not None else None
    report = {
        "stage": NAME,
        "ml_cicd_version": __version__,
        "result": rollout.result or "unknown",
        "message": rollout.message.strip(),
        "final_weight": final,
        "weight_before": before.canary,
        "strategy": values["strategy"],
        "judge": rollout.judge_kind,
        "plan": [w.canary for w in rollout.plan],
        "limits": {**vars(rollout.limits), "alpha_rollout": values["alpha"]},
        "failed_checks": rollout.failures,
        "poll_s": values["poll"] if rollout.judge_kind == "sequential" else None,
        "sizing": rollout.sizing,
        "router": {
            "type": rollout.router.kind,
            "target": rollout.router.describe(),
            "stable": rollout.router.stable,
            "canary": rollout.router.canary,
        },
        "metrics": {"type": values["metrics"].get("type"), "queries": values["metrics"].get("queries")} if values["metrics"] else None,
        "model": {"name": values["model-name"], "version": values["version"]} if values["model-name"] else None,
        "mode": values["mode"],
        "deploy_command": bool(values["deploy-command"]),
        "stable_version_before": rollout.stable_version,
        "recorded_state": rollout.recorded,
        "preflight": {name: f.as_dict() for name, f in preflight.items()},
        "steps": [s.as_dict() for s in rollout.steps],
    }
    path = write_json(values["report"], report)
    outputs = {"final-weight": "" if final is None else f"{final:g}", "report": path, "version": values["version"]}
    if rollout.result:
        outputs["result"] = rollout.result  # empty when the traffic state is unknown: the action's restore step runs
    github.set_outputs(outputs)
    github.write_summary(render_summary(report))
    if cancelled:
        print(f"[{NAME}] {report['message']} Report: {path}.", flush=True)
        return CHECK_FAILED
    if rollout.result in SUCCESS[values["mode"]]:
        print(f"[{NAME}] {rollout.result}: {report['message']}", flush=True)
        return PASSED
    if rollout.result in FAILURE_TITLES:
        github.error(f"{report['message']} Report: {path}.", title=f"{NAME}: {FAILURE_TITLES[rollout.result]}")
    elif rollout.result == "frozen":
        github.error(
            f"{report['message']} Look at the canary, then rerun with `mode: restore` to roll back. Report: {path}.",
            title=f"{NAME}: frozen",
        )
    else:
        github.error(
            f"{report['message']} Traffic may still reach the canary ({rollout.router.describe()}): once the router answers, "
            f"rerun with `mode: restore`. Report: {path}.",
            title=f"{NAME}: traffic state unknown",
        )
    return CHECK_FAILED


SUCCESS = {
    "shift": ("promoted", "dry-run"),
    "restore": ("rolled-back", "dry-run"),
    "abort": (ABORTED, "dry-run"),
    "rollback": ("rolled-back", "dry-run"),
}
"""The results each mode exits 0 with; every other result is exit 1 with one annotation."""
FAILURE_TITLES = {
    "rolled-back": "rolled back",
    "refused": "refused",
    "deploy-failed": "deploy command failed",
    "handoff-failed": "handoff to stable failed",
    ABORTED: "aborted",
}
ICONS = {
    "promoted": "✅ promoted",
    "rolled-back": "↩️ rolled back",
    "aborted": "⏹️ aborted",
    "refused": "⛔ refused",
    "deploy-failed": "❌ deploy command failed",
    "handoff-failed": "⚠️ handoff to stable failed",
    "frozen": "🧊 frozen",
    "dry-run": "🔍 dry run",
    "unknown": "❌ traffic state unknown",
}


def render_summary(report: dict[str, Any]) -> str:
    lines = [f"### {NAME}: {ICONS.get(report['result'], report['result'])}", "", report["message"], ""]
    model = report.get("model")
    if model:
        lines += [f"Model `{model['name']}` version {model['version']} · strategy {report['strategy']} · judge {report['judge']}", ""]
    rows = []
    for step in report["steps"]:
        for check in step["checks"]:
            if check["counted_as"] == WATCHING:
                continue  # every poll is in the JSON report; the table shows the decisions
            c, s = check["canary"], check["stable"]
            weight = f"{check['weight']:g} %" + (" (+mirror)" if check["shadow"] else "")
            rows.append(
                [
                    weight,
                    c["requests"] if c["requests"] is None else round(c["requests"]),
                    s["requests"] if s["requests"] is None else round(s["requests"]),
                    _pct(c["error_rate"]),
                    _pct(s["error_rate"]),
                    _ms(c["p99_ms"]),
                    _ms(s["p99_ms"]),
                    check["counted_as"] + ("" if not check["reasons"] else ": " + "; ".join(check["reasons"])),
                ]
            )
    if rows:
        headers = ["weight", "requests canary", "requests stable", "errors canary", "errors stable", "p99 canary", "p99 stable", "verdict"]
        lines += [markdown_table(headers, rows), ""]
        shown = [r for step in report["steps"] for r in step["checks"] if r["counted_as"] != WATCHING]  # the table's rows
        weights = [r["weight"] for r in shown]
        errors = [round(100 * (r["canary"]["error_rate"] or 0), 2) for r in shown]
        lines += [
            "_Canary weight (bars) and canary error rate (line), both in percent, at each check:_",
            "",
            "```mermaid",
            "xychart-beta",
            f'  x-axis "check" [{", ".join(str(i + 1) for i in range(len(rows)))}]',
            '  y-axis "percent" 0 --> 100',
            f"  bar [{', '.join(f'{w:g}' for w in weights)}]",
            f"  line [{', '.join(f'{e:g}' for e in errors)}]",
            "```",
            "",
        ]
    lines += _evidence_chart(report) + _sizing_table(report)
    final = report["final_weight"]
    lines.append(f"Final canary weight: {'unknown' if final is None else f'{final:g} %'} · report `{report.get('stage')}.json`")
    return "\n".join(lines)


def _detectable(size: dict[str, Any]) -> str:
    errors = "no error-rate regression" if size["error_excess"] is None else f"errors {size['error_excess']:+.2%} or more"
    if size["slower_share"] is None:
        latency = "no latency regression"
    else:
        ratio = f" (p99 ×{size['p99_ratio']:.2f} for lognormal latencies)" if size.get("p99_ratio") else ""
        latency = f"≥ {size['slower_share']:.1%} of requests slower than stable p99 × (1 + latency-tolerance){ratio}"
    return f"the sequential judge rolls back within one interval: {errors}; {latency}"


def _sizing_table(report: dict[str, Any]) -> list[str]:
    sizing = report.get("sizing") or {}
    if not sizing.get("steps"):
        return []
    rows = []
    for z in sizing["steps"]:
        rows.append(
            [
                f"{z['weight']:g} %",
                round(z["canary_requests"]),
                "–" if z["error_excess"] is None else f"{z['error_excess']:+.2%}",
                "–"
                if z["slower_share"] is None
                else f"{z['slower_share']:.1%}" + (f" (p99 ×{z['p99_ratio']:.2f})" if z["p99_ratio"] else ""),
            ]
        )
    headers = [
        "step",
        "canary requests per interval",
        "smallest error-rate excess rolled back",
        "smallest share slower than the latency band",
    ]
    return [
        f"_Traffic sizing at {sizing['rate_per_s']:,.1f} requests/s (measured before the rollout), for the sequential judge within one interval:_",
        "",
        markdown_table(headers, rows),
        "",
    ]


def _evidence_chart(report: dict[str, Any]) -> list[str]:
    """The sequential judge's error-rate evidence at every poll: the anytime-valid bounds of canary − stable against
    the margin (percentage points); the bars mark the polls that decided (a rollback or an advance)."""
    points = []
    for step in report["steps"]:
        for check in step["checks"]:
            found = next((f["evidence"] for f in check["findings"] if f.get("evidence") and f["metric"] == "error rate"), None)
            if found:
                points.append((found, check["counted_as"] != WATCHING))
    if not points:
        return []
    margin = 100 * points[0][0]["margin"]
    top = max(4 * margin, 1.0)

    def clip(value: float) -> float:
        return round(max(-top, min(top, 100 * value)), 3)

    # a decision's bar reaches the bound that decided it: the lower one for a rollback, the upper one for an advance
    marks = [(clip(e["lower"]) if e["decision"] == "worse" else clip(e["upper"])) if decided else 0.0 for e, decided in points]
    lower = [clip(e["lower"]) for e, _ in points]
    upper = [clip(e["upper"]) for e, _ in points]
    return [
        "_Sequential judge, error rate: canary − stable in points, anytime-valid lower and upper bounds (lines) against the "
        f"margin {margin:g} (flat line), at every poll; a bar marks each decision (rolled back above the margin, advanced below):_",
        "",
        "```mermaid",
        "xychart-beta",
        f'  x-axis "poll" [{", ".join(str(i + 1) for i in range(len(points)))}]',
        f'  y-axis "points" {-top:g} --> {top:g}',
        f"  bar [{', '.join(f'{mark:g}' for mark in marks)}]",
        f"  line [{', '.join(f'{v:g}' for v in lower)}]",
        f"  line [{', '.join(f'{v:g}' for v in upper)}]",
        f"  line [{', '.join(f'{margin:g}' for _ in points)}]",
        "```",
        "",
    ]


STAGE = Stage(
    name=NAME,
    summary="shift traffic to a canary step by step, judge each step on live metrics, roll back on failure",
    options=OPTIONS,
    run=run,
    outputs=(
        (
            "result",
            "promoted, rolled-back, frozen, aborted, refused, deploy-failed or handoff-failed (dry-run for a dry run; "
            "empty when the traffic state is unknown)",
        ),
        ("final-weight", "the canary's last verified share of traffic in percent"),
        ("version", "the model version rolled out (with mode rollback: the one put back)"),
        ("traffic-changed", "true once the rollout changed a weight"),
        ("report", "path of the JSON report"),
    ),
)

"""A rollout in progress: moving traffic (verified), judging each step, and the ways it ends (promoted,
handed over to stable, rolled back, frozen, aborted, unwound after a cancel or a crash)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from mlcicd import github
from mlcicd.check_sources import CustomChecks, only_core
from mlcicd.checks import check_tests, checks_of
from mlcicd.deploying import Deployer
from mlcicd.judge import FAIL, INCONCLUSIVE, PASS, Figures, Finding, Limits, Verdict, judge
from mlcicd.lifecycle import RUNNING, RolloutRecord, abort_applies
from mlcicd.metric_sources import MetricsError, QueryError
from mlcicd.report import fmt
from mlcicd.routers import Router, RouterError, Weights
from mlcicd.sequential import sequential_verdict, undecided_only

from .plan import ABORTED, per_test_alpha
from .records import WATCHING, CheckRecord, Look, StepRecord, signals_held
from .render import milliseconds, percent
from .settings import NAME, Settings
from .sizing import size_traffic

RESTORE_ATTEMPTS = 2
"""Restoring stable while a job is being cancelled: GitHub sends SIGKILL about 7.5 s after SIGINT."""


class Rollout:
    def __init__(
        self, settings: Settings, router: Router, source: Any, plan: list[Weights], registry: RolloutRecord
    ) -> None:
        self.settings, self.router, self.source, self.plan, self.registry = (
            settings,
            router,
            source,
            plan,
            registry,
        )
        self.judge_kind = settings.judge_kind
        checks = checks_of(settings.metrics)
        self.limits = Limits(
            min_requests=self.settings.min_requests,
            max_error_rate=self.settings.max_error_rate,
            max_latency_p99_ms=self.settings.max_latency_p99_ms,
            alpha=per_test_alpha(self.settings.alpha, plan, self.judge_kind, check_tests(checks)),
            error_rate_tolerance=self.settings.error_rate_tolerance,
            latency_tolerance=self.settings.latency_tolerance,
        )
        self.custom = CustomChecks(
            checks, source, router.stable, router.canary, self.limits.alpha, self.limits.min_requests
        )
        """The custom checks (`metrics.checks`): business metrics, output drift, shadow answers."""
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
                f"{self.router.describe()} had {now.describe()} instead of {weights.describe()} (reloaded?); "
                "set it again. "
                "Keep weights across HAProxy reloads with `server-state-file` (see "
                "docs/actions/canary-shift.md).",
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
            return (
                missing,
                missing,
                Finding("source", "metrics", INCONCLUSIVE, f"{self.source.describe()} gave no answer: {exc}"),
            )

    def look(self, step: StepRecord, window_start: float, *, sequential: bool, pending: bool) -> Look | None:
        """One look at the step: an abort request ends it (None); else the weights are re-asserted, both
        variants
        read over the window and judged, custom checks included. `pending`: a sequential poll before the
        interval
        ends, where the custom checks' fixed-sample tests are not decided yet."""
        now = time.time()
        if abort_applies(self.registry.abort_request(), self.started):
            return None
        self.reassert(step.weight)
        canary, stable, problem = self.read(now - window_start)
        rule = sequential_verdict if sequential else partial(judge, self.judge_kind)
        verdict = Verdict(INCONCLUSIVE, [problem]) if problem else rule(canary, stable, self.limits)
        outcomes = self.custom.look(now - window_start, mirrored=bool(step.weight.shadow))
        folded = self.custom.fold(verdict, outcomes, pending=pending)
        return Look(now, canary, stable, folded, [o.as_dict(pending=pending) for o in outcomes], outcomes)

    def analyse(self, step: StepRecord) -> str:
        """Check every interval until the step passes (PASS) or failures reach failure-limit (FAIL)."""
        if self.judge_kind == "sequential":
            return self.watch(step)
        window_start = step.started
        streak = 0
        while True:
            time.sleep(self.settings.interval)
            look = self.look(step, window_start, sequential=False, pending=False)
            if look is None:
                return ABORTED
            counted = look.verdict.verdict
            if counted == INCONCLUSIVE:
                streak += 1
                if streak >= self.settings.max_inconclusive:
                    counted = "fail (inconclusive)"
            else:
                streak = 0
            step.checks.append(look.record(step.weight, window_start, counted))
            self._log(step.checks[-1])
            if counted == PASS:
                return PASS
            if counted == INCONCLUSIVE:
                continue
            self.failures += 1
            streak = 0
            window_start = look.at  # judge the next check on fresh data, not on the window that failed
            if self.failures >= self.settings.failure_limit:
                return FAIL

    def watch(self, step: StepRecord) -> str:
        """The sequential judge: read and judge every `poll`; leave the step as soon as the canary is shown
        worse
        (FAIL) or non-inferior on min-requests (PASS). At `interval` after the window started, an undecided
        step is
        judged by `statistical`'s fixed-sample tests; one without data is inconclusive and gets another
        interval, as
        with the other judges. The bounds are anytime-valid, so polling often costs no false rollbacks.
        Custom checks run fixed-sample tests: undecided at the polls, judged at the interval's end."""
        window_start = step.started
        deadline = window_start + self.settings.interval
        streak = 0
        while True:
            time.sleep(max(0.0, min(self.settings.poll, deadline - time.time())))
            pending = time.time() < deadline - 1e-6
            look = self.look(step, window_start, sequential=True, pending=pending)
            if look is None:
                return ABORTED
            verdict = look.verdict
            if (
                verdict.verdict == INCONCLUSIVE
                and not pending
                and undecided_only(only_core(verdict.findings))
            ):
                # The interval is over and the bounds decided nothing: the fixed-sample tests of `statistical`
                # judge the
                # whole window, as at the end of a fixed interval. Anytime-valid bounds pay for looking at
                # every poll
                # with width; alone, they would pass a canary 5 points worse at a few hundred requests.
                fixed = self.custom.fold(
                    judge("statistical", look.canary, look.stable, self.limits), look.outcomes
                )
                look.verdict = Verdict(fixed.verdict, only_core(verdict.findings) + fixed.findings)
            counted = look.verdict.verdict
            if counted == INCONCLUSIVE:
                if pending:
                    counted = WATCHING
                else:
                    streak += 1
                    deadline = look.at + self.settings.interval
                    if streak >= self.settings.max_inconclusive:
                        counted = "fail (inconclusive)"
            step.checks.append(look.record(step.weight, window_start, counted))
            if counted != WATCHING:
                self._log(step.checks[-1])
            if counted == PASS:
                return PASS
            if counted in (WATCHING, INCONCLUSIVE):
                continue
            self.failures += 1
            streak = 0
            window_start, deadline = look.at, look.at + self.settings.interval  # a fresh test on fresh data
            if self.failures >= self.settings.failure_limit:
                return FAIL

    def size_traffic(self, preflight: dict[str, Figures]) -> None:
        self.sizing = size_traffic(self.plan, self.settings, self.limits, self.judge_kind, preflight)

    def _log(self, check: CheckRecord) -> None:
        c, s = check.canary, check.stable
        print(
            f"[{NAME}] {check.weight.describe()}: {check.counted_as.upper()} — requests canary "
            f"{fmt(c.requests, 0)} / stable {fmt(s.requests, 0)}, "
            f"error rate {percent(c.error_rate)} / {percent(s.error_rate)}, p99 {milliseconds(c.p99_ms)} / "
            f"{milliseconds(s.p99_ms)}"
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
                    f"the canary serves 100 % of traffic {judged}. Without `deploy-command` it keeps it: the "
                    "stable server was not updated."
                )
                self.registry.record("promoted", 100)
                self.registry.event(
                    "rollout promoted (canary keeps 100 %)",
                    self.stable_version,
                    self.registry.version,
                    self.settings.reason,
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
                f"version {version} passed {judged} and serves 100 % of traffic from the canary, but the "
                "handoff to stable failed: "
                f"{failure}. The canary keeps all traffic (the judged version); @production is unchanged. "
                "Fix the stable server, "
                "rerun the rollout with `mode: restore` once it serves a good model, then roll the version "
                "out again."
            )
            self.registry.record("handoff-failed", 100)
            return
        self.steps.append(step)
        self.move(Weights(0))
        step.ended = time.time()
        self.handing_off = False
        if self.settings.mode == "rollback":
            self.result = "rolled-back"
            self.message = (
                f"rolled back: version {version} (@previous-production) is on the stable server and takes "
                "all traffic "
                f"(canary 0 %, verified); it was {self.stable_version or 'unknown'}. promote's mode rollback "
                "moves @production next."
            )
            self.registry.record("rolled-back", 0, stable=version)
            self.registry.event("rollback", self.stable_version, version, self.settings.reason)
            return
        self.result = "promoted"
        self.message = (
            f"version {version} passed {judged}; it is on the stable server, which takes all traffic again "
            "(canary 0 %, verified)."
        )
        self.registry.record("promoted", 0, stable=version)
        self.registry.event("rollout promoted", self.stable_version, version, self.settings.reason)

    def abort(self, step: StepRecord) -> None:
        request = self.registry.abort_request() or {}
        who = request.get("actor") or "someone"
        self.message = (
            f"aborted at {step.weight.describe()} by {who} ({request.get('reason') or 'no reason given'})."
        )
        if self.restore():
            self.result = "aborted"
            self.message += " Traffic is back on stable (verified)."
            self.registry.record("aborted", 0)
            self.registry.event(
                "rollout aborted", self.registry.version, self.stable_version, request.get("reason") or ""
            )
        else:
            self.registry.record("failed", None)
        self.registry.clear_abort()

    def _fail(self, step: StepRecord) -> None:
        reasons = "; ".join(step.checks[-1].verdict.reasons) or "too many inconclusive checks"
        if step.checks[-1].counted_as == "fail (inconclusive)":
            reasons = f"{self.settings.max_inconclusive} inconclusive checks in a row ({reasons})"
        if self.settings.on_failure == "freeze":
            self.result = "frozen"
            self.message = (
                f"frozen at {step.weight.describe()} after {self.failures} failed check(s): {reasons}."
            )
            self.registry.record("frozen", step.weight.canary)
            return
        self.message = (
            f"rolled back from {step.weight.describe()} after {self.failures} failed check(s): {reasons}."
        )
        if self.restore():
            self.result = "rolled-back"
            self.registry.record("rolled-back", 0)
            self.registry.event(
                "rollout rolled back", self.registry.version, self.stable_version, reasons[:300]
            )
        else:
            self.registry.record("failed", None)

    def unwind(self, why: str) -> None:
        """Cancelled or crashed mid-rollout: stable first, then the record."""
        self.message = why
        if self.handing_off:
            # The stable server may be half way through its deploy: the judged canary keeps the traffic.
            self.result = "handoff-failed"
            self.message += (
                " It was handing over to stable: the canary keeps all traffic; rerun with `mode: restore` "
                "once stable is good."
            )
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

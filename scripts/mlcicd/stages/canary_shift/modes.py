"""canary-shift's ways to move traffic: reaching router and metrics before anything changes, driving a
rollout (deploy, steps, unwind on any failure), and the operator modes restore, abort and rollback."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from mlcicd import github
from mlcicd.check_sources import read_samples
from mlcicd.checks import checks_of
from mlcicd.deploying import make_deployer, model_env
from mlcicd.errors import UsageError
from mlcicd.judge import Figures
from mlcicd.lifecycle import RUNNING, RolloutRecord
from mlcicd.metric_sources import MetricsError, QueryError
from mlcicd.outcome import Outcome, publish
from mlcicd.report import check_report_path
from mlcicd.routers import ROUTER_EXAMPLE, Router, RouterError, RouterRefused, Weights, make_router

from .conclude import outcome_of
from .plan import ABORTED
from .records import StepRecord
from .rollout import Rollout
from .settings import NAME, Settings


def make_router_of(settings: Settings) -> Router:
    if not settings.router:
        raise UsageError(
            "missing router", f"set `router`, e.g. `{ROUTER_EXAMPLE}` (see docs/actions/canary-shift.md)."
        )
    try:
        return make_router(settings.router)
    except ValueError as exc:
        raise UsageError("invalid value for router", f"{exc}. Example: `{ROUTER_EXAMPLE}`.") from None


def read_router(router: Router) -> Weights:
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
            f"{exc}. Check `router.address` (or the kubeconfig's server) and that {router.describe()} is up; "
            "nothing was changed.",
        ) from None


def reach_metrics(router: Router, source: Any, settings: Settings) -> dict[str, Figures]:
    """Reach the metrics source before anything changes: a wrong address or query is exit 2."""
    try:
        figures: dict[str, Figures] = source.read([router.stable, router.canary], settings.interval)
        read_samples(source, checks_of(settings.metrics), [router.stable, router.canary], settings.interval)
    except QueryError as exc:
        raise UsageError(
            "invalid metrics query", f"{exc}. Fix `metrics.queries` or `metrics.checks`; nothing was changed."
        ) from None
    except MetricsError as exc:
        raise UsageError(
            "metrics source unreachable",
            f"{exc}. Check `metrics.address` and that {source.describe()} is up; nothing was changed.",
        ) from None
    return figures


def drive(rollout: Rollout, before: Weights, preflight: dict[str, Figures], *, first_deploy: bool) -> Outcome:
    """Re-assert the weights a rollout starts from, deploy the canary, run the plan; unwind on any failure."""
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
                return outcome_of(rollout, before, preflight)
        rollout.run()
    except KeyboardInterrupt:
        rollout.unwind("the job was cancelled mid-rollout.")
        publish(outcome_of(rollout, before, preflight, cancelled=True))
        raise KeyboardInterrupt(rollout.message) from None
    except RouterError as exc:
        rollout.unwind(f"the router failed mid-rollout: {exc}.")
    except BaseException as exc:
        rollout.unwind(f"unexpected error {type(exc).__name__}: {exc}.")
        publish(outcome_of(rollout, before, preflight, cancelled=True))
        raise
    return outcome_of(rollout, before, preflight)


def connect_or_warn(registry: RolloutRecord) -> None:
    try:
        registry.connect()
    except Exception as exc:  # noqa: BLE001 - traffic is restored; the record is secondary
        detail = exc.message if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"
        github.warning(f"{detail} The canary state was not recorded.", title=f"{NAME}: registry unavailable")
        registry.client = None


def restore_stable(settings: Settings, router: Router) -> Outcome:
    """`mode: restore`: all traffic to stable, verified; for a job that died mid-rollout.
    Traffic first: a registry that is down must not keep the canary serving."""
    check_report_path(settings.report)
    before = read_router(router)
    registry = RolloutRecord(settings.model_name, settings.version)
    rollout = Rollout(settings, router, None, [], registry)
    if settings.dry_run:
        rollout.result = "dry-run"
        rollout.message = (
            f"dry run: {router.describe()} has {before.describe()}; a restore would set canary 0 %. Nothing "
            "was changed."
        )
        return outcome_of(rollout, before, {})
    rollout.steps.append(StepRecord(Weights(0), time.time()))
    restored = rollout.restore()
    rollout.steps[-1].ended = time.time()
    connect_or_warn(registry)
    if registry.client is not None and not registry.version:
        registry.version = str((registry.current() or {}).get("version") or "")
    rollout.recorded = registry.recorded()
    if restored:
        rollout.result = "rolled-back"
        rollout.message = f"restored: {router.describe()} had {before.describe()}, now canary 0 % (verified)."
        if rollout.recorded:
            last = rollout.recorded
            rollout.message += (
                f" The previous run had recorded `{last.get('state', '?')}` at canary "
                f"{last.get('weight', '?')} % ({last.get('updated', '?')})."
            )
        registry.record("rolled-back", 0)
        registry.event(
            "restore",
            registry.version or None,
            (registry.current() or {}).get("stable"),
            settings.reason or rollout.message,
        )
    else:
        registry.record("failed", None)
    return outcome_of(rollout, before, {})


def abort_rollout(settings: Settings, router: Router) -> Outcome:
    """`mode: abort`: a running rollout is asked to roll back (through the registry, which it reads at
    every check) and given one interval to do it; a frozen or dead one is rolled back here."""
    check_report_path(settings.report)
    registry = RolloutRecord(settings.model_name, settings.version)
    registry.connect()
    current = registry.current() or {}
    registry.version = registry.version or str(current.get("version") or "")
    before = read_router(router)
    rollout = Rollout(settings, router, None, [], registry)
    rollout.recorded = current or None
    stable = current.get("stable")
    running = current.get("state") == RUNNING and str(current.get("version")) == registry.version
    if settings.dry_run:
        rollout.result = "dry-run"
        what = (
            f"ask the running rollout of version {registry.version} to roll back"
            if running
            else "set canary 0 %"
        )
        rollout.message = (
            f"dry run: {router.describe()} has {before.describe()}; abort would {what}. Nothing was changed."
        )
        return outcome_of(rollout, before, {})
    registry.request_abort(settings.reason)
    if running:
        deadline = time.monotonic() + settings.interval + 60
        print(
            f"[{NAME}] asked the running rollout of version {registry.version} to roll back; waiting for it",
            flush=True,
        )
        while time.monotonic() < deadline and (registry.current() or {}).get("state") == RUNNING:
            time.sleep(2)
        ended = (registry.current() or {}).get("state")
        if ended in (ABORTED, "promoted", "rolled-back"):
            # It ended by itself: aborted (it saw the request), or finished before its next check.
            registry.clear_abort()
            rollout.verified = read_router(router)
            rollout.result = ABORTED
            rollout.message = (
                f"the running rollout of version {registry.version} saw the abort and put all traffic back "
                "on stable."
                if ended == ABORTED
                else f"the rollout of version {registry.version} ended `{ended}` before it saw the abort; "
                f"{router.describe()} has {rollout.verified.describe()}."
            )
            return outcome_of(rollout, before, {})
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
        registry.event("rollout aborted", registry.version or None, stable, settings.reason)
    else:
        registry.record("failed", None)
    return outcome_of(rollout, before, {})


def roll_back(settings: Settings, router: Router) -> Outcome:
    """`mode: rollback`: @previous-production onto the stable server, the way a rollout hands over
    (canary, switch, stable, back), without judging: it was production before. promote's mode
    rollback then moves the alias, so what is served and @production agree."""
    check_report_path(settings.report)
    name = settings.model_name
    registry = RolloutRecord(name, "")
    registry.connect()
    target, current = registry.alias("previous-production"), registry.alias("production")
    before = read_router(router)
    rollout = Rollout(replace(settings, version=target or ""), router, None, [Weights(100)], registry)
    rollout.stable_version = current
    rollout.recorded = registry.current()
    if not target or target == current:
        rollout.result = "refused"
        why = (
            "`previous-production` is not set"
            if not target
            else f"`previous-production` is version {target}, already `production`"
        )
        rollout.message = (
            f"`{name}` cannot roll back: {why}. Use `mode: shift` with the `version` of a known-good model "
            "instead (a full rollout)."
        )
        return outcome_of(rollout, before, {})
    registry.version = target
    if settings.dry_run:
        rollout.result = "dry-run"
        rollout.message = (
            f"dry run: a rollback would put version {target} on the canary, switch, hand it to stable; "
            f"@production is {current}."
        )
        return outcome_of(rollout, before, {})
    if before.canary or before.shadow:
        rollout.restore()  # whatever the canary serves now, it goes first
    tags = model_env(registry.version_tags(target))
    rollout.deployer = make_deployer(
        router, settings.deploy_command, name, target, settings.deploy_timeout, tags
    )
    return drive(rollout, before, {}, first_deploy=True)

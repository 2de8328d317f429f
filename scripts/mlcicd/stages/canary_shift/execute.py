"""canary-shift's run: check everything that can be checked before traffic moves, then drive the rollout."""

from __future__ import annotations

import os

from mlcicd import github
from mlcicd.deploying import make_deployer, model_env
from mlcicd.errors import UsageError
from mlcicd.lifecycle import RolloutRecord, busy_canary_message, gate_decision
from mlcicd.metric_sources import METRICS_EXAMPLE, make_source
from mlcicd.outcome import Outcome
from mlcicd.report import check_report_path

from .conclude import outcome_of
from .modes import abort_rollout, drive, make_router_of, reach_metrics, read_router, restore_stable, roll_back
from .plan import check_pairing, make_plan
from .rollout import Rollout
from .settings import NAME, Settings


def execute(settings: Settings) -> Outcome:
    from mlcicd import metric_sources, routers, tracking

    for name in (routers.TOKEN_ENV, metric_sources.TOKEN_ENV):
        if os.environ.get(name):
            github.add_mask(
                os.environ[name]
            )  # before anything can print it (a router echoing a header, a traceback)
    router = make_router_of(settings)
    check_pairing(settings, router.deploys, router.kind)
    operator_modes = {"restore": restore_stable, "abort": abort_rollout, "rollback": roll_back}
    if settings.mode in operator_modes:
        return operator_modes[settings.mode](settings, router)
    if not settings.metrics:
        raise UsageError(
            "missing metrics", f"set `metrics`, e.g. `{METRICS_EXAMPLE}` (see docs/actions/canary-shift.md)."
        )
    plan = make_plan(settings)
    if settings.strategy == "shadow" and not router.supports_shadow:
        raise UsageError(
            "strategy not supported by router",
            f"the {router.kind} router cannot mirror traffic, which shadow needs. Use strategy canary or "
            "blue-green, "
            "or the http router in front of a proxy that mirrors (Envoy, NGINX `mirror`).",
        )
    source = make_source(settings.metrics)
    check_report_path(settings.report)
    registry = RolloutRecord(settings.model_name, settings.version)
    registry.connect()  # read-only until traffic moves: a dry run checks the gate verdict too
    before = read_router(router)
    rollout = Rollout(settings, router, source, plan, registry)
    rollout.recorded = registry.current()
    rollout.stable_version = (rollout.recorded or {}).get("stable") or registry.alias("production")
    gates = None
    if settings.model_name:
        verdict = (registry.version_tags() or {}).get(tracking.TAG_GATES_PASSED)
        gates = gate_decision(
            verdict,
            force=settings.force,
            reason=settings.reason,
            name=settings.model_name,
            version=settings.version,
        )
        if not gates.allowed:
            rollout.result, rollout.message = "refused", gates.message
            return outcome_of(rollout, before, {})
    busy = busy_canary_message(before, router.describe(), rollout.recorded)
    if busy:
        raise UsageError("canary already has traffic", busy)
    preflight = reach_metrics(router, source, settings)
    rollout.deployer = make_deployer(
        router,
        settings.deploy_command,
        settings.model_name,
        settings.version,
        settings.deploy_timeout,
        model_env(registry.version_tags()),
    )
    rollout.size_traffic(preflight)
    if settings.dry_run:
        rollout.result = "dry-run"
        handoff = (
            "then the handoff to stable"
            if rollout.deployer
            else "and the canary keeps 100 % (no deploy-command)"
        )
        rollout.message = (
            f"dry run: router and metrics answer; the plan is {', '.join(w.describe() for w in plan)}, "
            f"{handoff}. "
            + (gates.message + " " if gates and gates.override else "")
            + "Nothing was changed."
        )
        return outcome_of(rollout, before, preflight)
    if gates and gates.override:
        github.warning(gates.message, title=f"{NAME}: gates overridden")
        registry.event(
            "forced rollout (gates overridden)", rollout.stable_version, settings.version, settings.reason
        )
    return drive(rollout, before, preflight, first_deploy=True)

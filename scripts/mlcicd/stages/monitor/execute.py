"""monitor's run: read everything first (a source that is down changes nothing), then act."""

from __future__ import annotations

import json
import os
from typing import Any

from mlcicd import __version__, github
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.outcome import Annotation, Outcome
from mlcicd.report import check_report_path

from .acting import dispatch_retrain, github_api, notify, now, post_issue, roll_back
from .decide import degraded, describe_actions, headline_of, recent_dispatch, wants_retrain
from .reading import check_drift, read_quality, resolve_baseline
from .render import render_summary
from .settings import NAME, TAG_BASELINE, TAG_BASELINE_AT, TAG_RETRAIN, WEBHOOK_ENV, Settings


def execute(settings: Settings) -> Outcome:
    from mlcicd import metric_sources, routers

    for env in (routers.TOKEN_ENV, metric_sources.TOKEN_ENV, WEBHOOK_ENV):
        if os.environ.get(env):
            github.add_mask(os.environ[env])
    name = settings.model_name.strip()
    if not name:
        raise UsageError("missing model-name", "pass `model-name`, the registered model to watch.")
    if not settings.data and not settings.quality:
        raise UsageError(
            "nothing to monitor", "set `data` (drift of recent inputs), `quality` (a live metric), or both."
        )
    if settings.router:
        try:
            routers.make_router(settings.router)
        except ValueError as exc:
            raise UsageError("invalid value for router", f"{exc}.") from None
    api = (
        github_api(settings)
        if (settings.retrain_workflow or settings.issue) and not settings.dry_run
        else None
    )
    check_report_path(settings.report)

    from mlflow import MlflowClient

    from mlcicd import monitor_idle, tracking

    uri = tracking.connect()
    client = MlflowClient()
    version, why = monitor_idle.watched_version(client, name, settings.alias)
    if version is None:  # before the first rollout: a notice, not an hourly failure
        return monitor_idle.nothing_to_watch(name, settings.alias, why, settings.report, tracking.redact(uri))
    report = observe(settings, client, version)
    report["tracking_uri"] = tracking.redact(uri)
    headline = headline_of(report, settings)
    act(settings, client, version, api, report, headline)
    report["headline"] = headline
    return conclude(settings, report, headline)


def observe(settings: Settings, client: Any, version: Any) -> dict[str, Any]:
    """Drift and quality, read before anything changes (only a first baseline is recorded)."""
    name = str(version.name)
    report: dict[str, Any] = {
        "stage": NAME,
        "version": __version__,
        "model": {
            "name": name,
            "alias": settings.alias,
            "version": str(version.version),
            "run_id": version.run_id,
        },
        "tracking_uri": "",
        "checked_at": now(),
        "drift": None,
        "quality": None,
        "actions": {},
        "dry_run": settings.dry_run,
    }
    if settings.data:
        report["drift"] = check_drift(client, settings, version)
    if settings.quality:
        value, origin = read_quality(settings.quality)
        baseline, baseline_origin = resolve_baseline(client, settings, version)
        quality: dict[str, Any] = {
            "metric": settings.quality_metric,
            "value": value,
            "source": origin,
            "tolerance": settings.tolerance,
        }
        if baseline is None:
            first = "recorded now (first check of this version)"
            quality.update(baseline=value, baseline_source=first, degraded=False, limit=None)
            if not settings.dry_run:
                client.set_model_version_tag(name, str(version.version), TAG_BASELINE, repr(value))
                client.set_model_version_tag(name, str(version.version), TAG_BASELINE_AT, now())
        else:
            is_degraded, limit = degraded(value, baseline, settings.tolerance, settings.direction)
            quality.update(
                baseline=baseline, baseline_source=baseline_origin, degraded=is_degraded, limit=limit
            )
        report["quality"] = quality
    drifted = bool(report["drift"] and report["drift"]["drifted"])
    is_degraded = bool(report["quality"] and report["quality"]["degraded"])
    report["status"] = (
        "+".join(s for s, on in (("drift", drifted), ("degraded", is_degraded)) if on) or "healthy"
    )
    return report


def act(
    settings: Settings, client: Any, version: Any, api: Any, report: dict[str, Any], headline: str
) -> None:
    """Rollback, retrain dispatch, issue and webhook, as configured; each says what it did in the report."""
    actions = report["actions"]
    if settings.dry_run:
        actions["dry-run"] = "nothing was changed"
        return
    name, status = str(version.name), report["status"]
    drifted, is_degraded = "drift" in status, "degraded" in status
    if is_degraded and settings.on_degradation == "rollback" and settings.alias == "production":
        actions["rollback"] = roll_back(client, settings, version, f"monitor: {headline}")
    if settings.retrain_workflow and wants_retrain(settings.retrain_on, drifted, is_degraded):
        last = recent_dispatch(version, settings.retrain_cooldown)
        if last:
            cooldown = f"retrain-cooldown {settings.retrain_cooldown / 3600:g} h"
            actions["retrain"] = f"already dispatched at {last} ({cooldown})"
        else:
            actions["retrain"] = dispatch_retrain(api, settings, status)
            if actions["retrain"].startswith("dispatched"):
                client.set_model_version_tag(name, str(version.version), TAG_RETRAIN, now())
    if settings.issue and status != "healthy":
        actions["issue"] = post_issue(
            api, name, f"ml-cicd monitor: {name} {status}", render_summary(report, headline)
        )
    webhook = os.environ.get(WEBHOOK_ENV, "").strip()
    if webhook and (settings.notify == "always" or (settings.notify == "problems" and status != "healthy")):
        where = f"{name}@{settings.alias} v{version.version}"
        actions["notification"] = notify(webhook, f"ml-cicd monitor · {where}: {headline}")


def conclude(settings: Settings, report: dict[str, Any], headline: str) -> Outcome:
    actions = report["actions"]
    rollback = actions.get("rollback") or {}
    outputs = {
        "status": report["status"],
        "rolled-back": "true" if rollback.get("ok") else "false",
        "retrain-dispatched": "true" if str(actions.get("retrain", "")).startswith("dispatched") else "false",
        "drifted-features": json.dumps(report["drift"]["drifted"] if report["drift"] else []),
        "quality": "" if not report["quality"] else repr(report["quality"]["value"]),
    }
    summary = render_summary(report, headline)
    status = report["status"]
    if status == "healthy":
        failed = [f"{k}: {v}" for k, v in actions.items() if isinstance(v, str) and v.startswith("FAILED")]
        notes = (Annotation("warning", f"{NAME}: notification failed", "; ".join(failed)),) if failed else ()
        return Outcome(NAME, PASSED, status, report, settings.report, outputs, summary, notes)
    model = report["model"]["name"]
    message = f"{headline} {describe_actions(actions)} See {settings.report}."
    note = Annotation("error", f"{NAME}: {model} {status}", message)
    return Outcome(NAME, CHECK_FAILED, status, report, settings.report, outputs, summary, (note,))

"""monitor's decisions: is the quality degraded, does it want a retrain, what the headline says."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mlcicd.report import fmt

from .settings import TAG_RETRAIN, Settings


def degraded(value: float, baseline: float, tolerance: float, direction: str) -> tuple[bool, float]:
    """(is it degraded, the limit it was held to)."""
    if direction == "higher":
        limit = baseline * (1 - tolerance) if baseline >= 0 else baseline * (1 + tolerance)
        return value < limit, limit
    limit = baseline * (1 + tolerance) if baseline >= 0 else baseline * (1 - tolerance)
    return value > limit, limit


def wants_retrain(setting: str, drifted: bool, is_degraded: bool) -> bool:
    return (drifted and setting in ("any", "drift")) or (is_degraded and setting in ("any", "degradation"))


def marker(model: str) -> str:
    return f"<!-- mlcicd-monitor: {model} -->"


def recent_dispatch(version: Any, cooldown_s: float) -> str:
    """When a retrain was dispatched for this version within the cooldown, else ''."""
    stamp = (version.tags or {}).get(TAG_RETRAIN, "")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)  # a hand-set tag without an offset: read as UTC, like ours
    return stamp if (datetime.now(timezone.utc) - at).total_seconds() < cooldown_s else ""


def headline_of(report: dict[str, Any], settings: Settings) -> str:
    parts = []
    drift, quality = report["drift"], report["quality"]
    if drift:
        parts.append(
            f"drift in {len(drift['drifted'])} feature(s): {', '.join(drift['drifted'][:8])}"
            if drift["drifted"]
            else f"no drift in {len(drift['features'])} feature(s)"
        )
    if quality:
        metric, value, base = quality["metric"], quality["value"], quality["baseline"]
        if quality["limit"] is None:
            parts.append(f"{metric} {fmt(value)} recorded as the baseline")
        else:
            word = "below" if settings.direction == "higher" else "above"
            state = f"{word} the limit" if quality["degraded"] else "within the limit"
            parts.append(
                f"{metric} {fmt(value)} {state} {fmt(quality['limit'])} (baseline {fmt(base)}, tolerance "
                f"{settings.tolerance:g})"
            )
    return "; ".join(parts) + "."


def describe_actions(actions: dict[str, Any]) -> str:
    said = []
    rollback = actions.get("rollback")
    if rollback:
        if rollback["ok"]:
            said.append(f"Rolled back: {rollback['registry']}; traffic: {rollback['traffic']}.")
        else:
            said.append(
                f"Rollback incomplete — registry: {rollback['registry'] or 'unchanged'}; traffic: "
                f"{rollback['traffic']}. "
                "Finish it by hand: `mlcicd promote --mode rollback` and `mlcicd canary-shift --mode "
                "restore`."
            )
    for key in ("retrain", "issue", "notification"):
        if key in actions:
            said.append(f"{key.capitalize()}: {actions[key]}.")
    if not said:
        said.append("No action configured (set retrain-workflow, issue, or a webhook).")
    return " ".join(said)

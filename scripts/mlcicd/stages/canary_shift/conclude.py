"""How a rollout ends: its report, outputs, summary and the one annotation, as one Outcome."""

from __future__ import annotations

from typing import Any

from mlcicd import __version__
from mlcicd.errors import CHECK_FAILED
from mlcicd.judge import Figures
from mlcicd.outcome import Annotation, Outcome, publish
from mlcicd.routers import Weights

from .plan import ending
from .render import render_summary
from .rollout import Rollout
from .settings import NAME


def rollout_report(rollout: Rollout, before: Weights, preflight: dict[str, Figures]) -> dict[str, Any]:
    settings = rollout.settings
    final = rollout.verified.canary if rollout.verified is not None else None
    return {
        "stage": NAME,
        "ml_cicd_version": __version__,
        "result": rollout.result or "unknown",
        "message": rollout.message.strip(),
        "final_weight": final,
        "weight_before": before.canary,
        "strategy": settings.strategy,
        "judge": rollout.judge_kind,
        "plan": [w.canary for w in rollout.plan],
        "limits": {**vars(rollout.limits), "alpha_rollout": settings.alpha},
        "failed_checks": rollout.failures,
        "poll_s": settings.poll if rollout.judge_kind == "sequential" else None,
        "sizing": rollout.sizing,
        "router": {
            "type": rollout.router.kind,
            "target": rollout.router.describe(),
            "stable": rollout.router.stable,
            "canary": rollout.router.canary,
        },
        "metrics": (
            {"type": settings.metrics.get("type"), "queries": settings.metrics.get("queries")}
            if settings.metrics
            else None
        ),
        "model": {"name": settings.model_name, "version": settings.version} if settings.model_name else None,
        "mode": settings.mode,
        "deploy_command": bool(settings.deploy_command),
        "stable_version_before": rollout.stable_version,
        "recorded_state": rollout.recorded,
        "preflight": {name: f.as_dict() for name, f in preflight.items()},
        "steps": [s.as_dict() for s in rollout.steps],
    }


def outcome_of(
    rollout: Rollout, before: Weights, preflight: dict[str, Figures], *, cancelled: bool = False
) -> Outcome:
    """`cancelled`: the caller re-raises and the CLI annotates, so the outcome carries no annotation."""
    settings = rollout.settings
    report = rollout_report(rollout, before, preflight)
    final = report["final_weight"]
    outputs = {"final-weight": "" if final is None else f"{final:g}", "version": settings.version}
    if rollout.result:
        outputs["result"] = (
            rollout.result
        )  # empty when the traffic state is unknown: the action's restore step runs
    common = {"stage": NAME, "result": report["result"], "report": report, "report_path": settings.report}
    summary = render_summary(report)
    if cancelled:
        log = f"[{NAME}] {report['message']} Report: {settings.report}."
        return Outcome(**common, exit_code=CHECK_FAILED, outputs=outputs, summary=summary, log=log)
    end = ending(rollout.result, settings.mode, report["message"], rollout.router.describe(), settings.report)
    if end.title is None:
        log = f"[{NAME}] {rollout.result}: {report['message']}"
        return Outcome(**common, exit_code=end.exit_code, outputs=outputs, summary=summary, log=log)
    note = Annotation("error", f"{NAME}: {end.title}", end.message)
    return Outcome(**common, exit_code=end.exit_code, outputs=outputs, summary=summary, annotations=(note,))


def finish(
    rollout: Rollout, before: Weights, preflight: dict[str, Figures], *, cancelled: bool = False
) -> int:
    return publish(outcome_of(rollout, before, preflight, cancelled=cancelled))

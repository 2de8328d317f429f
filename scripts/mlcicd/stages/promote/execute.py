"""promote's run: check the options, register the model when needed, move the alias under the registry
lock, and end in one Outcome (a refusal is exit 1 with one error; nothing was moved)."""

from __future__ import annotations

from pathlib import Path

from mlcicd.errors import CHECK_FAILED, PASSED
from mlcicd.outcome import Annotation, Outcome
from mlcicd.promotion import AliasMove, Refused
from mlcicd.report import check_report_path

from .decide import NAME, build_report, check_alias, gates_required, subject
from .registration import carry_out
from .render import render_summary
from .settings import Settings


def execute(settings: Settings) -> Outcome:
    alias = check_alias(settings.alias, settings.mode)
    source, name = subject(settings)

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlcicd import tracking

    uri = tracking.connect()
    check_report_path(settings.report)
    move = AliasMove(
        name,
        alias,
        settings.mode,
        gates_required=gates_required(settings.require_gates, alias, settings.mode),
    )
    try:
        carry_out(MlflowClient(), settings, source, move)
    except Refused as refusal:
        move.status, move.message, move.refusal_title = "refused", refusal.message, refusal.title
    except MlflowException as exc:
        raise tracking.mlflow_error(exc, "MLflow request failed") from None
    report = build_report(move, tracking.redact(uri))
    summary = render_summary(report)
    if move.status == "refused":
        written = str(Path(settings.report))  # as write_json names it
        error = Annotation(
            "error", f"{NAME}: {move.refusal_title}", move.message + f" Nothing was promoted; see {written}."
        )
        outputs = {"version": move.version or ""}
        return Outcome(NAME, CHECK_FAILED, move.status, report, settings.report, outputs, summary, (error,))
    outputs = {
        "version": move.version or "",
        "alias": alias,
        "previous-version": move.from_version or "",
        "model-uri": f"models:/{name}@{alias}",
    }
    return Outcome(NAME, PASSED, move.status, report, settings.report, outputs, summary)

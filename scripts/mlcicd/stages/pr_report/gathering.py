"""What the comment is made of: stage reports from files or the candidate's MLflow run, the jobs'
results and outputs, the pull request of the event."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlcicd.errors import UsageError

from .settings import GATES_ARTIFACT


def read_reports(paths: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                "report not found", f"{path} does not exist. Pass the reports the stages wrote.", file=path
            ) from None
        except (OSError, ValueError) as exc:
            raise UsageError(
                "report unreadable", f"{path}: {exc}. Pass a JSON report written by a stage.", file=path
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("stage"), str):
            raise UsageError(
                "not a stage report",
                f"{path} has no `stage` field; pass a report written by an ml-cicd stage.",
                file=path,
            )
        found[document["stage"]] = document
    return found


def gates_from_run(run_id: str) -> tuple[dict[str, Any] | None, str]:
    """check-gates' report from the candidate's run; (None, why) when it cannot be had — never fatal."""
    try:
        import tempfile

        import mlflow

        from mlcicd import tracking

        tracking.connect()
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.MlflowClient().download_artifacts(run_id, GATES_ARTIFACT, tmp)
            return json.loads(Path(path).read_text(encoding="utf-8")), ""
    except UsageError as exc:
        return None, exc.message
    except Exception as exc:  # noqa: BLE001 - a fork's run without registry secrets still gets its comment
        return None, f"{GATES_ARTIFACT} of run {run_id} could not be read ({type(exc).__name__})"


def event_pull_request() -> str:
    path = os.environ.get("GITHUB_EVENT_PATH", "")
    if not path:
        return ""
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    number = (event.get("pull_request") or {}).get("number") or (
        event.get("number") if "pull_request" in event else None
    )
    return str(number) if number else ""


def job_output(jobs: dict[str, Any], key: str) -> str:
    """The first non-empty output `key` of any job: the stage jobs inside train.yml, or the caller's `train`
    job."""
    for job in jobs.values():
        value = ((job.get("outputs") or {}) if isinstance(job, dict) else {}).get(key)
        if value not in (None, ""):
            return str(value)
    return ""

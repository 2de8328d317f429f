"""check-gates and the tracking store: the candidate, its baseline, and where the verdict is recorded."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcicd import readonly, tracking
from mlcicd.errors import UsageError


def resolve_candidate(client: Any, uri: str, model_name: str) -> tuple[str, Any | None, str | None]:
    """(model name, registered version or None, run id or None) for the candidate URI."""
    from mlflow.exceptions import MlflowException

    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", uri)
    try:
        if match and not match.group(1).startswith("m-"):
            name = match.group(1)
            version = (
                client.get_model_version(name, match.group(2))
                if match.group(2)
                else client.get_model_version_by_alias(name, match.group(3))
            )
            return name, version, version.run_id
        if uri.startswith("models:/m-"):
            logged = client.get_logged_model(uri.removeprefix("models:/").split("/")[0])
            return model_name or trained_for(client, logged.source_run_id), None, logged.source_run_id
        if uri.startswith("runs:/"):
            run_id = uri.removeprefix("runs:/").split("/")[0]
            return model_name or trained_for(client, run_id), None, run_id
    except MlflowException as exc:
        raise UsageError(
            "candidate model not found",
            f"`{uri}` does not resolve: {str(exc).splitlines()[0]}. Check `model-uri`.",
        ) from None
    raise UsageError(
        "unsupported model-uri",
        f"`{uri}`: use models:/<name>/<version>, models:/<name>@<alias>, models:/m-<id> "
        "or runs:/<run_id>/<path>.",
    )


def trained_for(client: Any, run_id: str | None) -> str:
    """The registered model name train-gpu recorded on the run it trained ('' for a run it did not start)."""
    if not run_id:
        return ""
    return str(client.get_run(run_id).data.tags.get(tracking.TAG_MODEL_NAME, ""))


def find_baseline(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    if not name or alias.lower() in ("", "none"):
        return None
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None  # no such alias (or model) yet: a first run
        raise


def record(client: Any, report: Mapping[str, Any], version: Any, run_id: str | None) -> None:
    """The verdict where promote and people look: version tag, run tag, run metrics and the report
    artifact."""
    verdict = "true" if report["passed"] else "false"
    if version is not None and readonly.active():
        return  # a pull request gated a registered version (training skipped): its records stay as they are
    if version is not None:
        client.set_model_version_tag(version.name, version.version, tracking.TAG_GATES_PASSED, verdict)
        client.set_model_version_tag(
            version.name, version.version, "mlcicd.gates.failed", ",".join(report["failed_gates"])[:5000]
        )
    if run_id:
        client.set_tag(run_id, tracking.TAG_GATES_PASSED, verdict)
        for metric, value in report["metrics"]["candidate"].items():
            if isinstance(value, (int, float)) and value == value:
                key = re.sub(r"[^\w.-]", "_", metric)
                client.log_metric(run_id, f"gates.{key}", float(value))
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "check-gates.json"
            target.write_text(json.dumps(json.loads(json.dumps(report, default=str)), indent=2))
            client.log_artifact(run_id, str(target), "mlcicd")

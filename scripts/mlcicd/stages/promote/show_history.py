"""`mlcicd history <model>`: the promotion history kept in the registry, as markdown or JSON on stdout.

A query, not a pipeline step: it writes no report and no outputs (its markdown also goes to the step
summary in Actions), so it returns its exit code instead of an Outcome."""

from __future__ import annotations

import json
import os

from mlcicd import github
from mlcicd.errors import PASSED, UsageError
from mlcicd.history import read_history
from mlcicd.registry import get_model

from .render import history_table
from .settings import HistorySettings


def show(settings: HistorySettings) -> int:
    name = settings.model_name.strip()
    if not name:
        raise UsageError("missing model-name", "pass the registered model, e.g. `mlcicd history churn`.")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlcicd import tracking

    tracking.connect()
    try:
        model = get_model(MlflowClient(), name)
    except MlflowException as exc:
        raise tracking.mlflow_error(exc, "MLflow request failed") from None
    events = read_history(dict(model.tags or {}))
    if settings.limit:
        events = events[-settings.limit :]
    if settings.format == "json":
        print(json.dumps(events, indent=2))
        return PASSED
    aliases = ", ".join(f"`{a}` → {v}" for a, v in sorted((model.aliases or {}).items())) or "none"
    body = history_table(events) if events else "No promotions recorded yet."
    markdown = f"## Promotion history of `{name}`\n\nAliases now: {aliases}\n\n{body}\n"
    print(markdown, flush=True)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        github.write_summary(markdown)
    return PASSED

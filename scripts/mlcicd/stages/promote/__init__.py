"""promote: register a model version in MLflow and move a registry alias (`staging`, `production`, …).

Also `mlcicd history <model>`, which prints the promotion history kept in the registry.

The registry is the source of truth: a version carries its lineage as tags (run, commit,
fingerprint, data digest, gate result), aliases say where each version is, and every alias move
is one registered-model tag `mlcicd.history.<time>-<hex>` holding a JSON event. Moving an alias
with its history is shared with monitor: mlcicd.promotion.

Inside: settings.py (typed options and their parsers), decide.py (what the options name, which alias,
the report), registration.py (registering the model, then the shared alias move), render.py (summary
and history table), run.py (`execute`), show_history.py (`mlcicd history`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlcicd.config import Option, Stage, choice, text, whole_number
from mlcicd.history import next_event_key, read_history
from mlcicd.promotion import PREVIOUS, PRODUCTION, AliasMove, Plan, Refused, plan_promote, plan_rollback
from mlcicd.registry import version_number
from mlcicd.report import default_report_path

from .decide import NAME, Source, check_alias, gates_required, parse_source
from .settings import expected_version, optional_boolean, require_gates

__all__ = [  # what tests (and, until it calls mlcicd.promotion itself, monitor) import from here
    "PREVIOUS",
    "PRODUCTION",
    "HISTORY",
    "STAGE",
    "Outcome",
    "Plan",
    "Refused",
    "Source",
    "check_alias",
    "execute",
    "expected_version",
    "gates_required",
    "next_event_key",
    "optional_boolean",
    "parse_source",
    "plan_promote",
    "plan_rollback",
    "read_history",
    "require_gates",
    "version_number",
]

OPTIONS = (
    Option(
        "model-name", text, "", "registered model name; optional with a models:/<name>/… model-uri", "churn"
    ),
    Option(
        "model-uri",
        text,
        "",
        "model to register or promote: runs:/<run_id>/<path>, models:/m-<id> (a logged model), models:/<name>/<version> or models:/<name>@<alias>",
        "runs:/4f2c…/model",
    ),
    Option(
        "version",
        version_number,
        "",
        "an existing version of model-name to promote (instead of model-uri)",
        "3",
    ),
    Option(
        "alias",
        text,
        "",
        "the alias to move: staging, production or any name; empty = staging (production with mode rollback)",
        "production",
    ),
    Option(
        "mode",
        choice("promote", "rollback"),
        "promote",
        "promote: point the alias at the version; rollback: production ← previous-production",
        "rollback",
    ),
    Option(
        "require-gates",
        require_gates,
        "auto",
        "refuse a version without tag mlcicd.gates.passed=true: auto (only for production), true or false",
        "true",
    ),
    Option(
        "gates-passed",
        optional_boolean,
        None,
        "record the gate result on the version (tag mlcicd.gates.passed) before promoting",
        "true",
    ),
    Option(
        "expected-current-version",
        expected_version,
        "",
        "refuse (exit 1) unless the alias currently points at this version; `none` = the alias must not be set",
        "2",
    ),
    Option("reason", text, "", "why, recorded in the promotion history", "'weekly retrain, gates green'"),
    Option(
        "report",
        text,
        default_report_path(NAME),
        "where to write the JSON report",
        "reports/promote.json",
        is_path=True,
    ),
)

HISTORY_OPTIONS = (
    Option("model-name", text, "", "registered model name", "churn"),
    Option("format", choice("markdown", "json"), "markdown", "markdown table or JSON list", "json"),
    Option("limit", whole_number(), 0, "show only the last N events; 0 = all", "20"),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .run import execute
    from .settings import Settings

    return publish(execute(build_settings(Settings, values)))


def run_history(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings

    from .settings import HistorySettings
    from .show_history import show

    return show(build_settings(HistorySettings, values))


# --- for monitor until it calls mlcicd.promotion.roll_back itself (issue 17) ---------------------

Outcome = AliasMove


def execute(client: Any, values: Mapping[str, Any], source: None, outcome: AliasMove) -> None:
    """A rollback with the old signature: `values` holds `expected-current-version` and `reason`."""
    from mlcicd.promotion import roll_back

    assert source is None and outcome.mode == "rollback", "only monitor's rollback still comes this way"
    roll_back(client, outcome, expected=values["expected-current-version"], reason=values["reason"])


STAGE = Stage(
    NAME,
    "register a model version in MLflow and move a registry alias (staging, production, rollback)",
    OPTIONS,
    run,
    outputs=(
        ("version", "the model version the alias points at now, e.g. `3`"),
        ("alias", "the alias moved, e.g. `production`"),
        (
            "previous-version",
            "the version the alias pointed at before (empty if none; the same version for a no-op)",
        ),
        ("model-uri", "`models:/<name>@<alias>`, for the next job"),
        ("report", "path of the JSON report"),
    ),
)
HISTORY = Stage(
    "history",
    "show a model's promotion history (newest last)",
    HISTORY_OPTIONS,
    run_history,
    has_config_section=False,
    positional="model-name",
)

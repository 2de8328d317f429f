"""promote: register a model version in MLflow and move a registry alias (`staging`, `production`, …).

Also `mlcicd history <model>`, which prints the promotion history kept in the registry.

The registry is the source of truth: a version carries its lineage as tags (run, commit,
fingerprint, data digest, gate result), aliases say where each version is, and every alias move
is one registered-model tag `mlcicd.history.<time>-<hex>` holding a JSON event. Moving an alias
with its history is shared with monitor: mlcicd.promotion.

Inside: settings.py (typed options and their parsers), decide.py (what the options name, which alias,
the report), registration.py (registering the model, then the shared alias move), render.py (summary
and history table), execute.py (`execute`), show_history.py (`mlcicd history`).
"""

from __future__ import annotations

from typing import Any

from mlcicd.config import Option, Stage, choice, text, whole_number
from mlcicd.history import next_event_key, read_history
from mlcicd.promotion import PREVIOUS, PRODUCTION, Plan, plan_promote, plan_rollback
from mlcicd.registry import version_number
from mlcicd.report import report_option

from .decide import NAME, Source, check_alias, gates_required, parse_source
from .settings import expected_version, optional_boolean, require_gates

__all__ = [  # the stage, and the decisions its tests reach through it
    "PREVIOUS",
    "PRODUCTION",
    "HISTORY",
    "STAGE",
    "Plan",
    "Source",
    "check_alias",
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
        "model-name",
        text,
        "",
        "the registered model. Created on first registration",
        "churn",
        shown_default="none (required, unless `model-uri` is `models:/<name>/…`)",
    ),
    Option(
        "model-uri",
        text,
        "",
        "the model to register or promote: `runs:/<run_id>/<path>` or `models:/m-<id>` (a logged model: "
        "registered once, then reused), or `models:/<name>/<version>` / `models:/<name>@<alias>` (an "
        "existing version). Give this or `version`",
        "runs:/4f2c…/model",
    ),
    Option(
        "version", version_number, "", "an existing version of `model-name`. Give this or `model-uri`", "3"
    ),
    Option(
        "alias",
        text,
        "",
        "the alias to move: `staging`, `production` or any name of letters, digits, `_` and `-`. `latest` "
        "and `v<number>` are reserved by MLflow; `previous-production` is managed by promote",
        "production",
        shown_default="`staging` (`production` with `mode: rollback`)",
    ),
    Option(
        "mode",
        choice("promote", "rollback"),
        "promote",
        "`promote`: point `alias` at the version. `rollback`: `production` ← `previous-production` (takes "
        "no `model-uri`, `version` or `gates-passed`)",
        "rollback",
    ),
    Option(
        "require-gates",
        require_gates,
        "auto",
        "refuse a version whose tag `mlcicd.gates.passed` is not `true`. `auto`: only when promoting to "
        "`production` (a rollback restores a version that was already in production and is not checked). "
        "`true`: for every alias and for rollbacks. `false`: never",
        "true",
    ),
    Option(
        "gates-passed",
        optional_boolean,
        None,
        "`true` or `false`: write the gate result to the version's `mlcicd.gates.passed` tag before the "
        "gate check (it stays even if the promotion is refused). Empty leaves the tag alone. check-gates "
        "sets the tag itself",
        "true",
    ),
    Option(
        "expected-current-version",
        expected_version,
        "",
        "refuse (exit 1, nothing changed, nothing registered) unless `alias` currently points at this "
        "version. `none`: the alias must not be set yet. Use it when a decision was made against a known "
        "production version (gates compared against it, a reviewer approved replacing it)",
        "2",
    ),
    Option(
        "reason",
        text,
        "",
        "why; recorded in the history event (at most 1,000 characters)",
        "weekly retrain, gates green",
    ),
    report_option(NAME),
)

HISTORY_OPTIONS = (
    Option("model-name", text, "", "registered model name", "churn"),
    Option("format", choice("markdown", "json"), "markdown", "markdown table or JSON list", "json"),
    Option("limit", whole_number(), 0, "show only the last N events; 0 = all", "20"),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute
    from .settings import Settings

    return publish(execute(build_settings(Settings, values)))


def run_history(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings

    from .settings import HistorySettings
    from .show_history import show

    return show(build_settings(HistorySettings, values))


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

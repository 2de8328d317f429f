"""monitor: watch the production model after deployment; roll back and retrain when it goes bad.

Meant for a scheduled workflow. Two checks, each optional:

- drift: recent production inputs (`data`) against the reference profile stored with the version
  behind the alias (train-gpu logs it as `mlcicd/reference-profile.json` in the version's run), with
  the same tests as validate-data;
- quality: one live number (F1 on delayed labels, CTR, conversion…) from Prometheus or an HTTP JSON
  endpoint, against a baseline: below `baseline × (1 − tolerance)` is degraded.

Degraded → rollback: traffic back to stable through the router, then `production` back to
`previous-production` through promote's rollback (so it is in the promotion history). Drift or
degradation → the consumer's training workflow is dispatched with `retrain: true`, one issue is
opened or updated, and a Slack-compatible webhook is told. Exit 0 healthy, 1 action taken, 2 bad
input — and on exit 2 nothing was changed.
"""

from __future__ import annotations

from typing import Any

from mlcicd.config import Option, Stage, boolean, choice, duration, number, text
from mlcicd.report import report_option
from mlcicd.routers import ROUTER_EXAMPLE, parse_spec, router_spec

from .decide import degraded, recent_dispatch, wants_retrain
from .settings import NAME, TAG_RETRAIN, WEBHOOK_ENV, Settings

__all__ = [
    "NAME",
    "OPTIONS",
    "STAGE",
    "TAG_RETRAIN",
    "Settings",
    "degraded",
    "recent_dispatch",
    "run",
    "wants_retrain",
]

QUALITY_KEYS = {
    "prometheus": {"type", "address", "query", "timeout"},
    "http": {"type", "address", "field", "timeout"},
}
QUALITY_EXAMPLE = "{type: prometheus, address: http://prometheus:9090, query: 'avg_over_time(model_f1[1d])'}"
DRIFT_OPTIONS = ("drift-threshold", "min-wasserstein", "min-psi", "min-share-change", "delimiter", "encoding")


def quality_spec(value: Any) -> dict[str, Any]:
    spec = parse_spec(
        value, QUALITY_KEYS, {"prometheus": ("address", "query"), "http": ("address", "field")}, "quality"
    )
    if spec and not str(spec["address"]).startswith(("http://", "https://")):
        raise ValueError(f"`quality.address` {spec['address']!r} must be an http:// or https:// URL")
    return spec


def baseline_setting(value: Any) -> str | float:
    """Empty (recorded on the version), `gates` (check-gates' value) or a number."""
    raw = text(value).strip().lower()
    if raw in ("", "recorded", "gates"):
        return "" if raw == "recorded" else raw
    return number()(raw)


def _drift_options() -> tuple[Option, ...]:
    from mlcicd.drift_check import THRESHOLD_OPTIONS
    from mlcicd.scanning import DATA_OPTIONS

    by_name = {o.name: o for o in (*THRESHOLD_OPTIONS, *DATA_OPTIONS)}
    return tuple(by_name[name] for name in DRIFT_OPTIONS)


OPTIONS = (
    Option(
        "model-name",
        text,
        "",
        "the registered model to watch",
        "churn-classifier",
        shown_default="none (required)",
    ),
    Option(
        "alias",
        text,
        "production",
        "the alias serving users. Only `production` can be rolled back",
        "production",
    ),
    Option(
        "data",
        text,
        "",
        "recent production inputs: CSV, Parquet or JSON Lines; a file, directory or glob",
        "exports/last-7-days.parquet",
        is_path=True,
        shown_default="none: no drift check",
    ),
    Option(
        "reference",
        text,
        "",
        "a reference profile file (`mlcicd profile`) to measure drift against instead of the one stored "
        "with the version (`mlcicd/reference-profile.json` in its run, logged by train-gpu)",
        "reference.json",
        is_path=True,
        shown_default="the profile stored with the version",
    ),
    Option(
        "target",
        text,
        "",
        "the label column. When the export has it, its drift is reported as label drift; when it does not, "
        "it is left out of the comparison (`not_compared`) instead of counting as drift. Set it when the "
        "profile has the label",
        "churned",
    ),
    *_drift_options(),
    Option(
        "quality",
        quality_spec,
        {},
        "the live quality metric, a YAML mapping: `{type: prometheus, address: …, query: …}` (the query "
        "returns one number) or `{type: http, address: https://metrics.internal/quality, field: live.f1}` "
        "(see Live quality in the monitor docs). Token: env `MLCICD_METRICS_TOKEN`",
        QUALITY_EXAMPLE,
        shown_default="none: no quality check",
    ),
    Option(
        "quality-metric",
        text,
        "quality",
        "the metric's name in reports; with `baseline: gates`, the check-gates metric to read",
        "f1",
    ),
    Option(
        "baseline",
        baseline_setting,
        "",
        "what the live value is held to: empty = the value recorded on the version by the first check after "
        "it became production; `gates` = check-gates' value of `quality-metric` for the version; or a "
        "number",
        "gates",
        shown_default="the recorded value (empty)",
    ),
    Option(
        "tolerance",
        number(minimum=0, maximum=1),
        0.03,
        "relative tolerance, 0 to 1: degraded below `baseline × (1 − tolerance)` (above `baseline × (1 + "
        "tolerance)` with `direction: lower`)",
        "0.05",
    ),
    Option(
        "direction",
        choice("higher", "lower"),
        "higher",
        "`higher`: higher is better (F1, CTR). `lower`: lower is better (error rate)",
        "lower",
    ),
    Option(
        "on-degradation",
        choice("rollback", "alert"),
        "rollback",
        "`rollback`: traffic to stable and `production` ← `previous-production`. `alert`: report only",
        "alert",
    ),
    Option(
        "router",
        router_spec,
        {},
        "the traffic router to put back on stable at a rollback, a YAML mapping as in canary-shift's "
        "`router`. Token: env `MLCICD_ROUTER_TOKEN`",
        ROUTER_EXAMPLE,
        shown_default="canary-shift's `router` in the same config file; none: traffic is not touched",
    ),
    Option(
        "deploy-command",
        text,
        "",
        "at a rollback, put `@previous-production` back on the canary and then the stable server with this "
        "command, as canary-shift's `mode: rollback` does (`DEPLOY_TARGET`, `MODEL_URI`, …)",
        "python serving/deploy.py",
        shown_default="canary-shift's `deploy-command` in the same config file; none: only traffic and alias",
    ),
    Option(
        "retrain-workflow",
        text,
        "",
        "workflow file in this repository to dispatch with `retrain: true` on drift or degradation; needs "
        "`actions: write`",
        "ml.yml",
        shown_default="none: no dispatch",
    ),
    Option(
        "retrain-ref",
        text,
        "",
        "branch or tag the retrain runs on",
        "main",
        shown_default="the ref of this run (`main` outside Actions)",
    ),
    Option(
        "retrain-on",
        choice("any", "drift", "degradation"),
        "any",
        "what dispatches the retrain: `any`, `drift` or `degradation`",
        "drift",
    ),
    Option(
        "retrain-cooldown",
        duration,
        86400.0,
        "no second dispatch for the same version within this time (a scheduled monitor sees the same drift "
        "on every run). A duration: `30m`, `12h`, or a number of seconds",
        "12h",
        shown_default="`24h`",
    ),
    Option(
        "issue",
        boolean,
        False,
        "`true`: open or update one issue, labelled `ml-cicd-monitor`, while the model is unhealthy; needs "
        "`issues: write`",
        "true",
    ),
    Option(
        "notify",
        choice("problems", "always", "never"),
        "problems",
        f'when to post the summary to `{WEBHOOK_ENV}` (Slack-compatible `{{"text": …}}`): `problems`, '
        "`always` or `never`",
        "always",
    ),
    Option(
        "repository",
        text,
        "",
        "`owner/name` for the GitHub API",
        "acme/churn",
        shown_default="`GITHUB_REPOSITORY`",
    ),
    Option(
        "dry-run",
        boolean,
        False,
        "`true`: check and report; no rollback, dispatch, issue, webhook or version tag",
        "true",
    ),
    report_option(NAME),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute

    return publish(execute(build_settings(Settings, values).with_canary_fallbacks()))


STAGE = Stage(
    NAME,
    "watch the production model: drift of recent inputs and a live quality metric; roll back, retrain and "
    "alert when they go bad",
    OPTIONS,
    run,
    outputs=(
        ("status", "`healthy`, `drift`, `degraded` or `drift+degraded`"),
        ("rolled-back", "`true` when production was rolled back"),
        ("retrain-dispatched", "`true` when the training workflow was dispatched"),
        ("drifted-features", "JSON list of the drifted features"),
        ("quality", "the live quality value read (empty without `quality`)"),
        ("report", "path of the JSON report"),
    ),
)

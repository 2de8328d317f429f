"""pr-report: one comment on the pull request with what the pipeline found, updated in place.

The gate table (candidate vs production, deltas, significance), the latency table and the drift
summary, from the stage reports: check-gates' report is read from the candidate's MLflow run
(`mlcicd/check-gates.json`, where check-gates stores it), or any report from a local file; the
jobs' results and outputs come from the workflow's `toJSON(needs)`. The comment is found again by a
hidden marker, so every push updates the same comment. A token that may not comment (a pull
request from a fork gets a read-only one) is a warning, never a failed pipeline.
"""

from __future__ import annotations

from typing import Any

from mlcicd.config import Option, Stage, text, text_list
from mlcicd.report import report_option

from .settings import NAME, Settings, jobs_json, pull_request_number

__all__ = ["NAME", "OPTIONS", "STAGE", "Settings", "run"]

OPTIONS = (
    Option(
        "model-name",
        text,
        "",
        "the model the pipeline builds; it names the comment (the marker), so two pipelines in one "
        "repository keep two comments",
        "churn",
        shown_default="the `model-name` output of a job in `jobs`",
    ),
    Option(
        "run-id",
        text,
        "",
        "MLflow run of the candidate, whose `mlcicd/check-gates.json` holds the gate report",
        "4f2c9a…",
        shown_default="the `run-id` output of a job in `jobs`",
    ),
    Option(
        "reports",
        text_list,
        [],
        "stage report files (JSON) to include, comma- or newline-separated. A check-gates report here is "
        "used instead of the run's",
        "mlcicd-reports/validate-data.json,mlcicd-reports/check-gates.json",
    ),
    Option(
        "jobs",
        jobs_json,
        {},
        "the calling job's `needs` as JSON (the expression `toJSON(needs)`): each job's result and "
        "outputs, e.g. the caller's `train` job with train.yml's outputs",
        '{"train": {"result": "success", "outputs": {"run-id": "4f2c9a…"}}}',
    ),
    Option(
        "pull-request",
        pull_request_number,
        "",
        "the pull request number (`#42` or `42`). Outside a pull request event and without it, nothing is "
        "posted",
        "42",
        shown_default="the pull request of this `pull_request` event",
    ),
    Option("repository", text, "", "`owner/name`", "acme/churn", shown_default="`GITHUB_REPOSITORY`"),
    report_option(NAME, "the comment's markdown"),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute

    return publish(execute(build_settings(Settings, {**values, "reports": tuple(values["reports"])})))


STAGE = Stage(
    NAME,
    "post the pipeline's findings (gates vs production, significance, latency, drift) as one pull-request "
    "comment, updated in place",
    OPTIONS,
    run,
    outputs=(
        (
            "comment",
            "`created`, `updated`, `skipped` (not a pull request) or `failed` (warned: e.g. a read-only "
            "token)",
        ),
        ("comment-url", "link to the comment"),
        ("report", "path of the JSON report (the comment's markdown)"),
    ),
)

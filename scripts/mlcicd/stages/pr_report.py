"""pr-report: one comment on the pull request with what the pipeline found, updated in place.

The gate table (candidate vs production, deltas, significance), the latency table and the drift
summary, from the stage reports: check-gates' report is read from the candidate's MLflow run
(`mlcicd/check-gates.json`, where check-gates stores it), or any report from a local file; the
jobs' results and outputs come from the workflow's `toJSON(needs)`. The comment is found again by a
hidden marker, so every push updates the same comment. A token that may not comment (a pull
request from a fork gets a read-only one) is a warning, never a failed pipeline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcicd import __version__, github
from mlcicd.config import Option, Stage, text, text_list
from mlcicd.errors import PASSED, UsageError
from mlcicd.outcome import Outcome
from mlcicd.report import check_report_path, default_report_path, fmt, markdown_table

NAME = "pr-report"
GATES_ARTIFACT = "mlcicd/check-gates.json"
MAX_COMMENT = 60_000
"""GitHub refuses comments over 65,536 characters."""
STAGE_ORDER = ("validate-data", "train-gpu", "check-gates", "promote")


def pull_request_number(value: Any) -> str:
    raw = text(value).strip().lstrip("#")
    if raw and not raw.isdigit():
        raise ValueError(f"{value!r} is not a pull request number")
    return raw


def jobs_json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raw = text(value).strip()
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON; pass `${{ toJSON(needs) }}`") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object of jobs, as `${{ toJSON(needs) }}` gives")
    return document


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
    Option(
        "report",
        text,
        default_report_path(NAME),
        "where to write the JSON report (the comment's markdown)",
        "reports/pr-report.json",
        is_path=True,
    ),
)


# --- gathering --------------------------------------------------------------------------------


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


# --- the comment ------------------------------------------------------------------------------


def marker(model: str) -> str:
    return f"<!-- mlcicd-pr-report: {model or 'default'} -->"


def _icon(result: str) -> str:
    return {"success": "✅", "failure": "❌", "skipped": "⏭️", "cancelled": "🚫"}.get(result, "⚠️")


def jobs_section(jobs: dict[str, Any]) -> list[str]:
    if not jobs:
        return []
    names = sorted(jobs, key=lambda n: (STAGE_ORDER.index(n) if n in STAGE_ORDER else len(STAGE_ORDER), n))
    rows = []
    for name in names:
        job = jobs[name] if isinstance(jobs[name], dict) else {}
        result = str(job.get("result", "unknown"))
        outputs = {
            k: v for k, v in (job.get("outputs") or {}).items() if v not in ("", None) and k != "report"
        }
        shown = ", ".join(f"{k}: `{str(v)[:60]}`" for k, v in list(outputs.items())[:4])
        rows.append((f"`{name}`", f"{_icon(result)} {result}", shown))
    return [markdown_table(["job", "result", "outputs"], rows), ""]


def gates_section(gates: dict[str, Any] | None, why_missing: str) -> list[str]:
    if gates is None:
        return [
            "### Gates",
            "",
            f"_Not available: {why_missing}._" if why_missing else "_check-gates did not run._",
            "",
        ]
    base = gates.get("baseline") or {}
    against = (
        f"`@{base.get('alias')}` (version {base.get('model_version')})"
        if base.get("model_version")
        else "no production model yet"
    )
    verdict = (
        "✅ all gates passed"
        if gates.get("passed")
        else f"❌ failed: {', '.join(gates.get('failed_gates') or [])}"
    )
    if gates.get("warnings"):
        verdict += f"; ⚠️ warnings: {', '.join(gates['warnings'])}"
    lines = [
        f"### Gates: {verdict}",
        "",
        f"Candidate vs {against}, {fmt(gates.get('test_rows'))} test rows.",
        "",
    ]
    rows: list[tuple[Any, ...]] = [
        (
            g["gate"],
            g.get("candidate"),
            g.get("baseline"),
            g.get("delta"),
            g.get("threshold"),
            "⚠️" if g.get("warning") else "✅" if g.get("passed") else "❌",
        )
        for g in gates.get("gates") or []
    ]
    if rows:
        lines += [
            markdown_table(["gate", "candidate", "production", "delta", "threshold", "result"], rows),
            "",
        ]
    significance = gates.get("significance") or {}
    if significance:
        rows = [
            (m, s.get("delta"), f"[{fmt(s.get('ci_low'))}, {fmt(s.get('ci_high'))}]", s.get("p_value"))
            for m, s in significance.items()
            if isinstance(s, dict)
        ]
        lines += [
            "Is the candidate better? Paired test on the same rows:",
            "",
            markdown_table(["metric", "delta", "95 % CI", "p-value"], rows),
            "",
        ]
    latency = gates.get("latency") or {}
    rows = [
        (
            model,
            batch,
            s.get("p50_ms"),
            s.get("p95_ms"),
            s.get("p99_ms"),
            s.get("throughput_rows_per_s"),
            s.get("device"),
        )
        for model, by_batch in latency.items()
        for batch, s in (by_batch or {}).items()
    ]
    if rows:
        lines += [
            "### Latency (ms)",
            "",
            markdown_table(["model", "batch", "p50", "p95", "p99", "rows/s", "device"], rows),
            "",
        ]
    return lines


def drift_section(validation: dict[str, Any] | None, jobs: dict[str, Any]) -> list[str]:
    if validation is not None:
        drift = validation.get("drift")
        schema = validation.get("schema") or {}
        lines = [f"### Data: {'✅ passed' if validation.get('passed') else '❌ failed'}", ""]
        lines.append(
            f"{fmt((validation.get('data') or {}).get('rows'))} rows; schema failures: "
            f"{len(schema.get('failures') or [])}."
        )
        if drift:
            drifted = drift.get("drifted") or []
            features = drift.get("features") or []
            lines.append(
                f"Drift: {len(drifted)} of {len(features)} feature(s) drifted"
                + (": " + ", ".join(f"`{c}`" for c in drifted[:10]) if drifted else ".")
            )
            rows = [
                (
                    f"`{f['column']}`",
                    f.get("status"),
                    f.get("test"),
                    f.get("p_value"),
                    f.get("effect_size"),
                    f.get("psi"),
                )
                for f in features
                if f.get("column") in drifted
            ][:10]
            if rows:
                lines += [
                    "",
                    markdown_table(["feature", "status", "test", "p-value", "effect size", "PSI"], rows),
                ]
        return [*lines, ""]
    return _drift_from_outputs(jobs)


def _drift_from_outputs(jobs: dict[str, Any]) -> list[str]:
    """Without validate-data's report: what its job outputs say."""
    drifted_json = job_output(jobs, "drifted-features")
    if not drifted_json:
        return []
    try:
        drifted = json.loads(drifted_json)
    except ValueError:
        drifted = []
    row_count = job_output(jobs, "rows") or job_output(jobs, "data-rows")
    validate = jobs.get("validate-data")
    # Only validate-data's own job result speaks for the data; a caller's `train` job fails for any stage.
    lines = [
        f"### Data: {_icon(validate['result'])} {validate['result']}"
        if isinstance(validate, dict)
        else "### Data",
        "",
    ]
    if row_count.isdigit():
        lines.append(f"{fmt(int(row_count))} rows.")
    lines.append(
        f"Drift: {len(drifted)} feature(s) drifted"
        + (": " + ", ".join(f"`{c}`" for c in drifted[:10]) if drifted else ".")
    )
    return [*lines, ""]


def job_output(jobs: dict[str, Any], key: str) -> str:
    """The first non-empty output `key` of any job: the stage jobs inside train.yml, or the caller's `train`
    job."""
    for job in jobs.values():
        value = ((job.get("outputs") or {}) if isinstance(job, dict) else {}).get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def render_comment(
    model: str, jobs: dict[str, Any], reports: dict[str, dict[str, Any]], gates_missing: str
) -> str:
    gates = reports.get("check-gates")
    passed = gates.get("passed") if gates else None
    head = (
        "✅ the candidate passed the gates"
        if passed
        else "❌ the candidate failed the gates"
        if passed is False
        else "gates not run"
    )
    run_url = ""
    if os.environ.get("GITHUB_RUN_ID"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        run_url = (
            " · [workflow "
            f"run]({server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/"
            f"{os.environ['GITHUB_RUN_ID']})"
        )
    sha = os.environ.get("GITHUB_SHA", "")[:7]
    lines = [f"## ml-cicd{f' · `{model}`' if model else ''}: {head}", ""]
    lines += jobs_section(jobs)
    lines += drift_section(reports.get("validate-data"), jobs)
    lines += gates_section(gates, gates_missing)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"<sub>Updated {now}{f' for `{sha}`' if sha else ''}{run_url} by ml-cicd {__version__}.</sub>"
    body = "\n".join(lines).rstrip()
    if len(body) > MAX_COMMENT:
        body = (
            body[:MAX_COMMENT]
            + f"\n\n_…cut at {MAX_COMMENT:,} characters: the full report is in `{GATES_ARTIFACT}` of the "
            "run._"
        )
    return f"{body}\n\n{footer}\n\n{marker(model)}\n"


# --- the stage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    model_name: str = ""
    run_id: str = ""
    reports: tuple[str, ...] = ()
    jobs: Mapping[str, Any] = field(default_factory=dict)
    pull_request: str = ""
    repository: str = ""
    report: str = ""


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    return publish(execute(build_settings(Settings, {**values, "reports": tuple(values["reports"])})))


def execute(settings: Settings) -> Outcome:
    from mlcicd.github_api import GitHubApi, GitHubApiError, repository_from_env, token_from_env

    token = token_from_env()
    check_report_path(settings.report)
    reports = read_reports(list(settings.reports))
    jobs = dict(settings.jobs)
    gates_missing = ""
    if "check-gates" not in reports:
        run_id = settings.run_id or job_output(jobs, "run-id")
        if run_id and (jobs.get("check-gates") or {}).get("result", "success") != "skipped":
            found, gates_missing = gates_from_run(run_id)
            if found is not None:
                reports["check-gates"] = found
    model = settings.model_name or job_output(jobs, "model-name")
    body = render_comment(model, jobs, reports, gates_missing)
    number = settings.pull_request or event_pull_request()
    report: dict[str, Any] = {
        "stage": NAME,
        "version": __version__,
        "pull_request": number or None,
        "body": body,
    }
    github.write_summary(body)  # the findings reach the job's summary even when the comment cannot be posted

    def ended(comment: str, url: str = "") -> Outcome:
        outputs = {"comment": comment, "comment-url": url}
        return Outcome(NAME, PASSED, comment, report, settings.report, outputs)

    if not number:
        report["comment"] = "skipped: not a pull_request event (pass `pull-request` to comment anyway)"
        return ended("skipped")
    try:
        repository = repository_from_env(settings.repository)
    except ValueError as exc:
        raise UsageError("invalid value for repository", f"{exc}; set `repository`.") from None
    if not token:
        raise UsageError(
            "no GitHub token",
            "the comment is posted with the job's token: set `MLCICD_GITHUB_TOKEN: ${{ github.token }}` in "
            "the step's env "
            "(the job needs `permissions: pull-requests: write`).",
        )
    try:
        how, comment = GitHubApi(repository, token).upsert_comment(int(number), marker(model), body)
    except GitHubApiError as exc:
        why = (
            "the token may not comment here (a pull request from a fork gets a read-only token; "
            "the job needs `permissions: pull-requests: write`)"
            if exc.forbidden
            else "GitHub did not take the comment"
        )
        github.warning(
            f"{exc.message}: {why}. The report is in this job's step summary.",
            title=f"{NAME}: comment not posted",
        )
        report["comment"] = f"not posted: {exc.message}"
        return ended("failed")
    report["comment"] = how
    report["comment_url"] = comment.get("html_url", "")
    return ended(how, report["comment_url"])


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

"""pr-report's run: gather, render, post (or say why not), one Outcome."""

from __future__ import annotations

from typing import Any

from mlcicd import __version__, github
from mlcicd.errors import PASSED, UsageError
from mlcicd.outcome import Outcome
from mlcicd.report import check_report_path

from .comment import marker, render_comment
from .gathering import event_pull_request, gates_from_run, job_output, read_reports
from .settings import NAME, Settings


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

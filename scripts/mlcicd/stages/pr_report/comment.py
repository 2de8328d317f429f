"""The pull-request comment: jobs, data and drift, gates and latency, found again by a hidden marker."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from mlcicd import __version__
from mlcicd.report import fmt, markdown_table

from .gathering import job_output
from .settings import GATES_ARTIFACT, MAX_COMMENT, STAGE_ORDER


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

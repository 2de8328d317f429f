"""check-gates' step summary."""

from __future__ import annotations

from typing import Any

from mlcicd.report import markdown_table


def result_icon(gate: dict[str, Any]) -> str:
    """✅ passed, ❌ failed, ⚠️ a `warn` probe that found a problem (shown, not failing)."""
    return "⚠️" if gate.get("warning") else "✅" if gate.get("passed") else "❌"


def render_summary(report: dict[str, Any]) -> str:
    title = (
        "## check-gates: ✅ passed"
        if report["passed"]
        else f"## check-gates: ❌ {len(report['failed_gates'])} gate(s) failed"
    )
    if report.get("warnings"):
        title += f", ⚠️ {len(report['warnings'])} warning(s)"
    base = report["baseline"]
    first_run = "first run: " + base["first_run"] if base["first_run"] else "comparison off"
    against = (
        f"vs `@{base['alias']}` (version {base['model_version']})"
        if base["model_version"]
        else f"no `@{base['alias']}` baseline ({first_run})"
    )
    lines = [
        title,
        "",
        f"Candidate `{report['candidate']['model_uri']}` {against}, {report['test_rows']:,} test rows.",
        "",
    ]
    rows = [
        (g["gate"], g["candidate"], g["baseline"], g["delta"], g["threshold"], result_icon(g), g["detail"])
        for g in report["gates"]
    ]
    baseline_head = f"@{base['alias']}" if base["alias"].lower() not in ("", "none") else "baseline"
    lines += [
        markdown_table(["gate", "candidate", baseline_head, "delta", "threshold", "result", "detail"], rows),
        "",
    ]
    cand, prod = report["metrics"]["candidate"], report["metrics"]["baseline"] or {}
    lines += [
        "### Metrics",
        "",
        markdown_table(
            ["metric", "candidate", "baseline", "delta"],
            [
                (m, v, prod.get(m), (v - prod[m]) if prod.get(m) is not None and v is not None else None)
                for m, v in cand.items()
            ],
        ),
        "",
    ]
    lat_rows = []
    for model, by_batch in report["latency"].items():
        for batch, stats in by_batch.items():
            lat_rows.append(
                (
                    model,
                    batch,
                    stats["p50_ms"],
                    stats["p95_ms"],
                    stats["p99_ms"],
                    stats["max_ms"],
                    stats["throughput_rows_per_s"],
                    f"{stats['device']} ({stats['timer']})",
                )
            )
    lines += [
        "### Latency (ms)",
        "",
        markdown_table(["model", "batch", "p50", "p95", "p99", "max", "rows/s", "device"], lat_rows),
        "",
    ]
    return "\n".join(lines)

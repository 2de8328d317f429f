"""validate-data's step summary: the schema failures and the drift table, in markdown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlcicd.report import fmt, markdown_table


def render_summary(report: Mapping[str, Any]) -> str:
    data = report["data"]
    icon = "✅ passed" if report["passed"] else "❌ failed"
    lines = [
        f"## validate-data: {icon}",
        "",
        f"**{fmt(data['rows'])} rows**, {len(data['columns'])} columns, {len(data['files'])} file(s) from "
        f"`{data['source']}` · digest `{data['digest'][:19]}…`",
        "",
    ]
    for problem in report["input_problems"]:
        lines.append(f"- ⛔ {problem}")
    schema = report["schema"]
    if schema is not None:
        lines.append(f"### Schema (`{schema['source']}`)")
        if schema["failures"]:
            rows: list[tuple[Any, ...]] = [
                (
                    f"`{g['column']}`",
                    g["check"],
                    g["count"],
                    ", ".join(g["examples"]),
                    ", ".join(map(str, g["rows"])),
                )
                for g in schema["failures"]
            ]
            lines += ["", markdown_table(["column", "check", "failures", "examples", "first rows"], rows), ""]
        else:
            lines += ["", "All schema checks passed.", ""]
    drift = report["drift"]
    if drift is not None:
        lines.append(f"### Drift vs `{drift['reference']}` ({fmt(drift['reference_rows'])} reference rows)")
        rows = []
        for f in drift["features"]:
            name = f"`{f['column']}`" + (" (target)" if f["role"] == "target" else "")
            rows.append(
                (
                    name,
                    f["status"],
                    f.get("test"),
                    f.get("statistic"),
                    f.get("p_value"),
                    f.get("effect_size"),
                    f.get("psi"),
                    f["severity"],
                    "; ".join(f["reasons"]),
                )
            )
        lines += [
            "",
            markdown_table(
                [
                    "feature",
                    "status",
                    "test",
                    "statistic",
                    "p-value",
                    "effect size",
                    "PSI",
                    "severity",
                    "why",
                ],
                rows,
            ),
            "",
        ]
        chart = [f for f in drift["features"] if "ratio" in f][:30]
        if chart:
            ratios = [min(f["ratio"], 5.0) for f in chart]
            labels = ", ".join(json.dumps(f["column"][:20]) for f in chart)
            lines += [
                "```mermaid",
                "xychart-beta",
                '    title "Drift effect size (1 = threshold)"',
                f"    x-axis [{labels}]",
                f'    y-axis "x threshold" 0 --> {max(2.0, max(ratios)):.1f}',
                f"    bar [{', '.join(f'{r:.2f}' for r in ratios)}]",
                f"    line [{', '.join('1' for _ in ratios)}]",
                "```",
                "",
            ]
        if drift["not_in_reference"]:
            lines.append(
                "Not in the reference (not compared): "
                f"{', '.join(f'`{c}`' for c in drift['not_in_reference'])}"
            )
    return "\n".join(lines)

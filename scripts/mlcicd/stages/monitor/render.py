"""monitor's step summary."""

from __future__ import annotations

from typing import Any

from mlcicd.report import fmt, markdown_table


def render_summary(report: dict[str, Any], headline: str) -> str:
    model = report["model"]
    icon = "✅" if report["status"] == "healthy" else "🚨"
    lines = [
        f"## monitor: {icon} `{model['name']}@{model['alias']}` (version {model['version']}) "
        f"{report['status']}",
        "",
        headline,
        "",
    ]
    quality = report["quality"]
    if quality:
        rows: list[tuple[Any, ...]] = [
            (
                quality["metric"],
                quality["value"],
                quality["baseline"],
                quality["limit"],
                "❌ degraded" if quality["degraded"] else "✅",
                f"{quality['source']}; baseline: {quality['baseline_source']}",
            )
        ]
        lines += [
            "### Live quality",
            "",
            markdown_table(["metric", "now", "baseline", "limit", "result", "source"], rows),
            "",
        ]
    drift = report["drift"]
    if drift:
        lines += [f"### Drift: {fmt(drift['rows'])} recent rows vs {drift['reference']}", ""]
        shown = sorted(drift["features"], key=lambda f: f["column"] not in drift["drifted"])[:15]
        rows = [
            (
                f"`{f['column']}`",
                f["status"],
                f.get("test"),
                f.get("p_value"),
                f.get("effect_size"),
                f.get("psi"),
                "; ".join(f["reasons"]),
            )
            for f in shown
        ]
        lines += [
            markdown_table(["feature", "status", "test", "p-value", "effect size", "PSI", "why"], rows),
            "",
        ]
    if report["actions"]:
        lines += ["### Actions", ""]
        for key, value in report["actions"].items():
            if isinstance(value, dict):
                value = f"registry: {value['registry'] or 'unchanged'}; traffic: {value['traffic']}"
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines)

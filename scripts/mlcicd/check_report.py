"""canary-shift's step summary of the custom checks: a row per check per look, both variants' figures."""

from __future__ import annotations

from typing import Any

from mlcicd.report import markdown_table

ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⏳"}


def _figure(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"


def checks_summary(report: dict[str, Any], watching: str) -> list[str]:
    """Markdown lines for the step summary; none when the rollout has no custom checks."""
    rows = []
    for step in report.get("steps", []):
        for look in step.get("checks", []):
            if look.get("counted_as") == watching:
                continue  # every poll is in the JSON report; the table shows the decisions
            weight = f"{look['weight']:g} %" + (" (+mirror)" if look.get("shadow") else "")
            for outcome in look.get("custom_checks", []):
                rows.append(
                    [
                        weight,
                        f"`{outcome['check']}` ({outcome['kind']})",
                        _figure(outcome.get("canary")),
                        _figure(outcome.get("stable")),
                        f"{ICON.get(outcome['verdict'], '')} {outcome['verdict']}: {outcome['detail']}",
                    ]
                )
    if not rows:
        return []
    headers = ["weight", "check", "canary (or pair)", "stable", "decision"]
    return [
        "_Custom checks (`metrics.checks`), at each judged check:_",
        "",
        markdown_table(headers, rows),
        "",
    ]

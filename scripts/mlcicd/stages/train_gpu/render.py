"""train-gpu's step summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlcicd.report import markdown_table


def render_summary(report: Mapping[str, Any]) -> str:
    if report.get("skipped"):
        head = "## train-gpu: ⏭️ skipped (same fingerprint already registered)"
    elif report.get("failed"):
        head = f"## train-gpu: ❌ {report['failed']}"
    else:
        head = "## train-gpu: ✅ trained"
    rows = [
        ("device", report.get("device")),
        ("run", report.get("run_id")),
        ("model", report.get("model_uri") or "–"),
        ("fingerprint", f"`{report['fingerprint'][:19]}…`"),
        ("wall time", f"{report['wall_time_s']:.1f} s" if "wall_time_s" in report else "–"),
        ("tracking", report.get("tracking_uri")),
    ]
    lines = [head, "", markdown_table(["", ""], rows), ""]
    if report.get("log_tail"):
        lines += [
            f"<details open><summary>last {len(report['log_tail'])} lines of output</summary>",
            "",
            "```text",
            *report["log_tail"],
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)

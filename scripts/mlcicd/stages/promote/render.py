"""promote's step summary and the history table (also `mlcicd history`'s)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlcicd.promotion import PREVIOUS, PRODUCTION
from mlcicd.report import markdown_table

SUMMARY_EVENTS = 5


ICONS = {
    "promoted": "✅ promoted",
    "rolled-back": "↩️ rolled back",
    "unchanged": "✅ unchanged",
    "refused": "❌ refused",
}


def render_summary(report: Mapping[str, Any]) -> str:
    model, alias = report["model"], report["alias"]
    lines = [
        f"## promote: {ICONS.get(report['outcome'], report['outcome'])} `{model}@{alias}`",
        "",
        report["message"],
        "",
    ]
    before, after = report["aliases"]["before"], report["aliases"]["after"]
    tags = {k: v for k, v in report["tags"].items() if k.startswith("mlcicd.")}
    gates = report["gates"]
    gate = {"true": "✅ passed", "false": "❌ failed"}.get(gates["passed"] or "", "not recorded")
    registration = report["registration"]
    moved = report["event"] is not None
    rows = [
        ("model", f"`{model}`"),
        ("alias", f"`{alias}` ({report['mode']})"),
        ("from → to", _move(before.get(alias), after.get(alias), moved)),
    ]
    if report["model_version"]:
        rows.append(("version", report["model_version"]))
    if registration:
        rows.append(("registration", f"{registration['status']} from `{registration['source']}`"))
    if alias == PRODUCTION:
        rows.append((PREVIOUS, _move(before.get(PREVIOUS), after.get(PREVIOUS), moved)))
    if report["model_version"]:
        rows.append(("gates", gate + (" (required)" if gates["required"] else "")))
    rows += [(f"`{k}`", _short(v)) for k, v in sorted(tags.items()) if k != "mlcicd.gates.passed"]
    lines += [markdown_table(["", ""], rows), ""]
    history = report["history"][-SUMMARY_EVENTS:]
    if history:
        lines += [f"### Recent history (last {len(history)})", "", history_table(history), ""]
    return "\n".join(lines)


def _move(before: str | None, after: str | None, moved: bool) -> str:
    if not moved or before == after:
        return f"{before or '(none)'} (unchanged)"
    return f"{before or '(none)'} → {after or '(none)'}"


def _short(value: str) -> str:
    return value[:12] if re.fullmatch(r"[0-9a-f]{40}", value) else value


def history_table(events: list[dict[str, Any]]) -> str:
    rows = []
    for e in events:
        run = e.get("workflow_run") or ""
        rows.append(
            (
                (e.get("time") or e.get("id", ""))[:19].replace("T", " "),
                f"`{e.get('alias', '?')}`",
                e.get("mode", ""),
                f"{e.get('from') or '(none)'} → {e.get('to') or '(none)'}",
                e.get("actor", ""),
                (e.get("commit") or "")[:12],
                f"[run]({run})" if run else "",
                e.get("reason", ""),
            )
        )
    return markdown_table(
        ["time (UTC)", "alias", "mode", "from → to", "actor", "commit", "workflow", "reason"], rows
    )

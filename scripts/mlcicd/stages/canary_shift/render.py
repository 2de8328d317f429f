"""canary-shift's step summary: the checks as a table, the weights and error rates as a chart, the
sequential judge's evidence and the traffic sizing."""

from __future__ import annotations

import math
from typing import Any

from mlcicd.check_report import checks_summary
from mlcicd.report import markdown_table

from .records import WATCHING
from .settings import NAME

ICONS = {
    "promoted": "✅ promoted",
    "rolled-back": "↩️ rolled back",
    "aborted": "⏹️ aborted",
    "refused": "⛔ refused",
    "deploy-failed": "❌ deploy command failed",
    "handoff-failed": "⚠️ handoff to stable failed",
    "frozen": "🧊 frozen",
    "dry-run": "🔍 dry run",
    "unknown": "❌ traffic state unknown",
}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def milliseconds(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f} ms"


def render_summary(report: dict[str, Any]) -> str:
    lines = [f"### {NAME}: {ICONS.get(report['result'], report['result'])}", "", report["message"], ""]
    model = report.get("model")
    if model:
        lines += [
            f"Model `{model['name']}` version {model['version']} · strategy {report['strategy']} · judge "
            f"{report['judge']}",
            "",
        ]
    rows = []
    for step in report["steps"]:
        for check in step["checks"]:
            if check["counted_as"] == WATCHING:
                continue  # every poll is in the JSON report; the table shows the decisions
            c, s = check["canary"], check["stable"]
            weight = f"{check['weight']:g} %" + (" (+mirror)" if check["shadow"] else "")
            rows.append(
                [
                    weight,
                    c["requests"] if c["requests"] is None else round(c["requests"]),
                    s["requests"] if s["requests"] is None else round(s["requests"]),
                    percent(c["error_rate"]),
                    percent(s["error_rate"]),
                    milliseconds(c["p99_ms"]),
                    milliseconds(s["p99_ms"]),
                    check["counted_as"]
                    + ("" if not check["reasons"] else ": " + "; ".join(check["reasons"])),
                ]
            )
    if rows:
        headers = [
            "weight",
            "requests canary",
            "requests stable",
            "errors canary",
            "errors stable",
            "p99 canary",
            "p99 stable",
            "verdict",
        ]
        lines += [markdown_table(headers, rows), ""]
        shown = [
            r for step in report["steps"] for r in step["checks"] if r["counted_as"] != WATCHING
        ]  # the table's rows
        weights = [r["weight"] for r in shown]
        errors = [round(100 * (r["canary"]["error_rate"] or 0), 2) for r in shown]
        lines += [
            "_Canary weight (bars) and canary error rate (line), both in percent, at each check:_",
            "",
            "```mermaid",
            "xychart-beta",
            f'  x-axis "check" [{", ".join(str(i + 1) for i in range(len(rows)))}]',
            '  y-axis "percent" 0 --> 100',
            f"  bar [{', '.join(f'{w:g}' for w in weights)}]",
            f"  line [{', '.join(f'{e:g}' for e in errors)}]",
            "```",
            "",
        ]
    lines += checks_summary(report, WATCHING) + _evidence_chart(report) + _sizing_table(report)
    final = report["final_weight"]
    lines.append(
        f"Final canary weight: {'unknown' if final is None else f'{final:g} %'} · report "
        f"`{report.get('stage')}.json`"
    )
    return "\n".join(lines)


def detectable(size: dict[str, Any]) -> str:
    errors = (
        "no error-rate regression"
        if size["error_excess"] is None
        else f"errors {size['error_excess']:+.2%} or more"
    )
    if size["slower_share"] is None:
        latency = "no latency regression"
    else:
        ratio = f" (p99 ×{size['p99_ratio']:.2f} for lognormal latencies)" if size.get("p99_ratio") else ""
        latency = (
            f"≥ {size['slower_share']:.1%} of requests slower than stable p99 × (1 + "
            f"latency-tolerance){ratio}"
        )
    return f"the sequential judge rolls back within one interval: {errors}; {latency}"


def _sizing_table(report: dict[str, Any]) -> list[str]:
    sizing = report.get("sizing") or {}
    if not sizing.get("steps"):
        return []
    rows = []
    for z in sizing["steps"]:
        rows.append(
            [
                f"{z['weight']:g} %",
                round(z["canary_requests"]),
                "–" if z["error_excess"] is None else f"{z['error_excess']:+.2%}",
                "–"
                if z["slower_share"] is None
                else f"{z['slower_share']:.1%}" + (f" (p99 ×{z['p99_ratio']:.2f})" if z["p99_ratio"] else ""),
            ]
        )
    headers = [
        "step",
        "canary requests per interval",
        "smallest error-rate excess rolled back",
        "smallest share slower than the latency band",
    ]
    return [
        f"_Traffic sizing at {sizing['rate_per_s']:,.1f} requests/s (measured before the rollout), for the "
        "sequential judge within one interval:_",
        "",
        markdown_table(headers, rows),
        "",
    ]


def _evidence_chart(report: dict[str, Any]) -> list[str]:
    """The sequential judge's error-rate evidence at every poll: the anytime-valid bounds of canary − stable
    against
    the margin (percentage points); the bars mark the polls that decided (a rollback or an advance)."""
    points = []
    for step in report["steps"]:
        for check in step["checks"]:
            found = next(
                (
                    f["evidence"]
                    for f in check["findings"]
                    if f.get("evidence") and f["metric"] == "error rate"
                ),
                None,
            )
            if found:
                points.append((found, check["counted_as"] != WATCHING))
    if not points:
        return []
    margin = 100 * float(points[0][0]["margin"])
    top = max(4 * margin, 1.0)

    def clip(value: float) -> float:
        return round(max(-top, min(top, 100 * value)), 3)

    # a decision's bar reaches the bound that decided it: the lower one for a rollback, the upper one for an
    # advance
    marks = [
        (clip(e["lower"]) if e["decision"] == "worse" else clip(e["upper"])) if decided else 0.0
        for e, decided in points
    ]
    lower = [clip(e["lower"]) for e, _ in points]
    upper = [clip(e["upper"]) for e, _ in points]
    return [
        "_Sequential judge, error rate: canary − stable in points, anytime-valid lower and upper bounds "
        "(lines) against the "
        f"margin {margin:g} (flat line), at every poll; a bar marks each decision (rolled back above the "
        "margin, advanced below):_",
        "",
        "```mermaid",
        "xychart-beta",
        f'  x-axis "poll" [{", ".join(str(i + 1) for i in range(len(points)))}]',
        f'  y-axis "points" {-top:g} --> {top:g}',
        f"  bar [{', '.join(f'{mark:g}' for mark in marks)}]",
        f"  line [{', '.join(f'{v:g}' for v in lower)}]",
        f"  line [{', '.join(f'{v:g}' for v in upper)}]",
        f"  line [{', '.join(f'{margin:g}' for _ in points)}]",
        "```",
        "",
    ]

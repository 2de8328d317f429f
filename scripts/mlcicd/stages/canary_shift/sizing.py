"""How much traffic a canary needs: before any traffic moves, the measured request rate against what
each judged step must see to detect a regression."""

from __future__ import annotations

from typing import Any

from mlcicd import github
from mlcicd.judge import Figures, Limits
from mlcicd.routers import Weights
from mlcicd.sequential import size_steps, sizing_warnings

from .render import detectable
from .settings import NAME, Settings


def size_traffic(
    plan: list[Weights], settings: Settings, limits: Limits, judge_kind: str, preflight: dict[str, Figures]
) -> dict[str, Any]:
    """Before any traffic moves: the request rate over the last interval, what each judged step will see, and
    a
    warning where that is too little for the options (or where nothing is judged at all)."""
    interval = settings.interval
    judged = [w.canary for w in plan if w.canary < 100 and not w.shadow]
    if not any(w.canary < 100 for w in plan):
        github.warning(
            "the plan is a single switch to 100 %: nothing is judged before all traffic reaches the canary. "
            "Give steps below 100 (e.g. `steps: 5,25,50`) for a canary that can be rolled back.",
            title=f"{NAME}: nothing will be judged",
        )
    measured = [f.requests for f in preflight.values()]
    counts = [c for c in measured if c is not None]
    if not judged or not counts or len(counts) < len(measured):
        return {"rate_per_s": None, "steps": []}
    rate = sum(counts) / interval
    errors = [e for e in (f.errors for f in preflight.values()) if e is not None]
    base = sum(errors) / sum(counts) if errors and sum(counts) else 0.0
    sizes = size_steps(judged, rate, interval, base, limits)
    sizing = {
        "rate_per_s": round(rate, 3),
        "base_error_rate": round(base, 6),
        "steps": [z.as_dict() for z in sizes],
    }
    for z in sizes:
        print(
            f"[{NAME}] canary {z.weight:g} %: ~{z.canary_requests:,.0f} canary requests per interval; "
            f"{detectable(z.as_dict())}",
            flush=True,
        )
    warnings = sizing_warnings(sizes, limits, interval)
    if judge_kind != "sequential":  # the detectable regressions are the sequential bounds'
        warnings = [w for w in warnings if "min-requests" in w]
    if warnings:
        github.warning(
            f"at {rate:,.1f} requests/s (measured over the last {interval:g} s): "
            + "; ".join(warnings)
            + ". "
            "Raise the step weights or `interval`, or lower `min-requests`; see 'How much traffic a canary "
            "needs' in "
            "docs/actions/canary-shift.md.",
            title=f"{NAME}: too little traffic to judge",
        )
    return sizing

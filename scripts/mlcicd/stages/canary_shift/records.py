"""What a rollout did, step by step: the records its report and summary are made of."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlcicd.judge import Figures, Verdict
from mlcicd.routers import Weights

WATCHING = "watching"
"""A sequential poll that decided nothing yet: the step goes on."""


@dataclass
class CheckRecord:
    weight: Weights
    at: float
    window_s: float
    canary: Figures
    stable: Figures
    verdict: Verdict
    counted_as: str
    """What the check did to the rollout: pass, fail, inconclusive (wait), or fail after too many
    inconclusive."""
    custom: list[dict[str, Any]] = field(default_factory=list)
    """The custom checks (`metrics.checks`) at this look: both variants' figures and the decision."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.canary,
            "shadow": self.weight.shadow,
            "at": self.at,
            "window_s": round(self.window_s, 3),
            "canary": self.canary.as_dict(),
            "stable": self.stable.as_dict(),
            "verdict": self.verdict.verdict,
            "counted_as": self.counted_as,
            "reasons": self.verdict.reasons,
            "findings": [vars(f) for f in self.verdict.findings],
            **({"custom_checks": self.custom} if self.custom else {}),
        }


@dataclass
class Look:
    """One reading of both variants over a step's window, judged (custom checks folded in)."""

    at: float
    canary: Figures
    stable: Figures
    verdict: Verdict
    custom: list[dict[str, Any]]
    outcomes: list[Any]
    """The custom checks' outcomes, for a later fold (the sequential judge's fixed-sample tests)."""

    def record(self, weight: Weights, window_start: float, counted_as: str) -> CheckRecord:
        window = self.at - window_start
        return CheckRecord(
            weight, self.at, window, self.canary, self.stable, self.verdict, counted_as, self.custom
        )


@dataclass
class StepRecord:
    weight: Weights
    started: float
    ended: float | None = None
    checks: list[CheckRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight.canary,
            "shadow": self.weight.shadow,
            "started": self.started,
            "ended": self.ended,
            "checks": [c.as_dict() for c in self.checks],
        }


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """While stable is being restored, a second SIGINT/SIGTERM must not abort the restore."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

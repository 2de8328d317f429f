"""canary-shift's settings: the resolved options, typed, read once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAME = "canary-shift"
STRATEGIES = ("canary", "linear", "blue-green", "shadow")
MODES = ("shift", "restore", "abort", "rollback")
DEFAULT_STEPS = (5, 25, 50, 100)
LINEAR_STEP = 10


@dataclass(frozen=True)
class PlanOptions:
    """The options that decide the weights a rollout goes through."""

    strategy: str = "canary"
    steps: tuple[int, ...] = ()
    step_weight: int = 0
    max_weight: int = 50


@dataclass(frozen=True)
class Settings(PlanOptions):
    interval: float = 300.0
    min_requests: int = 100
    max_error_rate: float = 0.01
    max_latency_p99_ms: float = 150.0
    judge: str = "both"
    poll: float = 15.0
    alpha: float = 0.01
    error_rate_tolerance: float = 0.005
    latency_tolerance: float = 0.2
    failure_limit: int = 1
    max_inconclusive: int = 3
    on_failure: str = "rollback"
    router: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    model_name: str = ""
    version: str = ""
    deploy_command: str = ""
    deploy_timeout: float = 900.0
    mode: str = "shift"
    force: bool = False
    reason: str = ""
    dry_run: bool = False
    report: str = ""
    config: str = ""
    config_sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def judge_kind(self) -> str:
        """Shadow traffic has no canary share to judge absolute limits on: only the comparison."""
        return "statistical" if self.strategy == "shadow" else self.judge

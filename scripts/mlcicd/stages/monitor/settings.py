"""monitor's settings and the names it writes (version tags, the issue label)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlcicd.drift_check import DriftSettings

NAME = "monitor"
WEBHOOK_ENV = "MLCICD_WEBHOOK_URL"
ISSUE_LABEL = "ml-cicd-monitor"
TAG_BASELINE = "mlcicd.monitor.baseline"
TAG_BASELINE_AT = "mlcicd.monitor.baseline_at"
TAG_ROLLED_BACK = "mlcicd.monitor.rolled_back"
TAG_RETRAIN = "mlcicd.monitor.retrain_dispatched"


@dataclass(frozen=True)
class Settings(DriftSettings):
    model_name: str = ""
    alias: str = "production"
    data: str = ""
    reference: str = ""
    target: str = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    quality: Mapping[str, Any] = field(default_factory=dict)
    quality_metric: str = "quality"
    baseline: str | float = ""
    tolerance: float = 0.03
    direction: str = "higher"
    on_degradation: str = "rollback"
    router: Mapping[str, Any] = field(default_factory=dict)
    deploy_command: str = ""
    retrain_workflow: str = ""
    retrain_ref: str = ""
    retrain_on: str = "any"
    retrain_cooldown: float = 86400.0
    issue: bool = False
    notify: str = "problems"
    repository: str = ""
    dry_run: bool = False
    report: str = ""
    config: str = ""
    config_sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_canary_fallbacks(self) -> Settings:
        """The router and deploy command of canary-shift's section of the same config file, where not given:
        the router the model was rolled out through (the one to put back on stable), and the command that put
        it there."""
        section = self.config_sections.get("canary-shift", {})
        return replace(
            self,
            router=self.router or section.get("router") or {},
            deploy_command=self.deploy_command or section.get("deploy-command") or "",
        )

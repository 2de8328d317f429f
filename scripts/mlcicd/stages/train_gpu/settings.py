"""train-gpu's settings: the only reader of the resolved option values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcicd.config import text

VALIDATE_DATA = "validate-data"
"""The section train-gpu falls back on for the data it trains on and the reference profile."""


def nproc(value: Any) -> str:
    raw = text(value).strip().lower() or "1"
    if raw == "auto" or (raw.isdigit() and int(raw) >= 1):
        return raw
    raise ValueError(f"{value!r} is not `auto` or a whole number >= 1")


@dataclass(frozen=True)
class Settings:
    command: str
    working_directory: str
    model_name: str
    experiment: str
    run_name: str
    params: str
    require_gpu: bool
    nproc_per_node: str
    timeout_minutes: float
    retrain: bool
    fingerprint_paths: list[str]
    data: list[str]
    data_digest: str
    signature_data: str
    target: str
    reference_profile: str
    report: str
    config: str = ""
    config_sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def _validated(self, key: str) -> str:
        # as mlcicd.config.section_of: validate-data's checked section of the same config file, paths resolved
        if not self.config:
            return ""
        return str(self.config_sections.get(VALIDATE_DATA, {}).get(key, "") or "")

    @property
    def validated_data(self) -> str:
        """validate-data's `data` in the same config file ('' without one)."""
        return self._validated("data")

    @property
    def validated_reference(self) -> str:
        """validate-data's `reference` in the same config file ('' without one)."""
        return self._validated("reference")

    @property
    def timeout_s(self) -> float:
        return self.timeout_minutes * 60

    def processes(self, gpu_count: int) -> int:
        """Processes per node: `auto` is one per visible GPU (one on a CPU runner)."""
        return (gpu_count or 1) if self.nproc_per_node == "auto" else int(self.nproc_per_node)

"""promote's and history's settings, and the parsers of promote's own option types: the only readers of
the resolved option values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcicd.config import boolean, text
from mlcicd.registry import version_number


def expected_version(value: Any) -> str:
    result = text(value).strip()
    if result.lower() == "none":
        return "none"
    return version_number(result)


def require_gates(value: Any) -> str:
    result = text(value).strip().lower()
    if result in ("", "auto"):
        return "auto"
    try:
        return "true" if boolean(result) else "false"
    except ValueError:
        raise ValueError(f"{value!r} is not auto, true or false") from None


def optional_boolean(value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return boolean(value)


@dataclass(frozen=True)
class Settings:
    model_name: str
    model_uri: str
    version: str
    alias: str
    mode: str
    require_gates: str
    gates_passed: bool | None
    expected_current_version: str
    reason: str
    report: str

    @property
    def rollback(self) -> bool:
        return self.mode == "rollback"


@dataclass(frozen=True)
class HistorySettings:
    model_name: str
    format: str
    limit: int

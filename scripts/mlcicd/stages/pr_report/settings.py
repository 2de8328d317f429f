"""pr-report's settings, and the parsers of its inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcicd.config import text

NAME = "pr-report"
GATES_ARTIFACT = "mlcicd/check-gates.json"
MAX_COMMENT = 60_000
"""GitHub refuses comments over 65,536 characters."""
STAGE_ORDER = ("validate-data", "train-gpu", "check-gates", "promote")


def pull_request_number(value: Any) -> str:
    raw = text(value).strip().lstrip("#")
    if raw and not raw.isdigit():
        raise ValueError(f"{value!r} is not a pull request number")
    return raw


def jobs_json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raw = text(value).strip()
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON; pass `${{ toJSON(needs) }}`") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object of jobs, as `${{ toJSON(needs) }}` gives")
    return document


@dataclass(frozen=True)
class Settings:
    model_name: str = ""
    run_id: str = ""
    reports: tuple[str, ...] = ()
    jobs: Mapping[str, Any] = field(default_factory=dict)
    pull_request: str = ""
    repository: str = ""
    report: str = ""

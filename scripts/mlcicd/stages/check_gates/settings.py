"""check-gates' settings: the option parsers, and one typed, frozen object built once from the resolved
options. Nothing else in the stage reads raw option values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlcicd.config import build_settings, number, text
from mlcicd.gate_table import THRESHOLDS, Task

NAME = "check-gates"
Missing = Literal["reject", "handle"]


def optional_number(**bounds: Any) -> Callable[[Any], float | None]:
    parse = number(**bounds)

    def optional(value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return parse(value)

    return optional


def size(value: Any) -> int | None:
    from mlcicd.sizes import parse_size

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_size(str(value))


def batch_sizes(value: Any) -> list[int]:
    items = value if isinstance(value, list) else text(value).split(",")
    result = []
    for item in items:
        raw = str(item).strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{item!r} is not a batch size (a whole number >= 1)")
        result.append(int(raw))
    if not result:
        raise ValueError("give at least one batch size, e.g. `1,32`")
    return result


def custom_metrics(value: Any) -> list[str]:
    items = value if isinstance(value, list) else text(value).replace("\n", ",").split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    for item in items:
        if not re.fullmatch(r"[\w.]+:[\w.]+", item):
            raise ValueError(f"{item!r} is not `module:function`")
    return items


LEVELS = ("fail", "warn", "off")
PROBE_OPTIONS = (
    # (option, probe, default level, help, example): what fails by default is what breaks in production
    (
        "probe-zeros",
        "zeros input",
        "fail",
        "level of the zeros-input probe (all-zero numeric features must give finite outputs): "
        "`fail` (a failed probe fails the gates), `warn` (shown as ⚠️, does not fail) or `off` (not run)",
        "warn",
    ),
    (
        "probe-extremes",
        "extreme values",
        "fail",
        "level of the extreme-values probe (±1e6 numeric features must give finite outputs): `fail`, `warn` "
        "or `off`",
        "warn",
    ),
    (
        "probe-determinism",
        "determinism",
        "fail",
        "level of the determinism probe (the same rows twice must give the same outputs): `fail`, `warn` or "
        "`off`",
        "warn",
    ),
    (
        "probe-class-collapse",
        "class collapse",
        "fail",
        "level of the class-collapse probe (a classifier must predict every class of the test data): `fail`, "
        "`warn` or `off`",
        "warn",
    ),
    (
        "probe-missing-values",
        "missing values",
        "warn",
        "level of the missing-values probe (a NaN cell must be handled or rejected as `missing-values` "
        "says): `fail`, `warn` "
        "or `off`. `warn` by default: many good models pass NaN through, and a gate every first run fails "
        "gets switched off",
        "fail",
    ),
)


@dataclass(frozen=True)
class Settings:
    model_uri: str
    model_name: str
    test_data: str
    target: str
    task: Task
    custom_metrics: Sequence[str]
    primary_metric: str
    compare_to: str
    min_improvement: float | None
    min_absolute_change: float | None
    require_significance: bool
    alpha: float
    first_run: str
    max_latency_p95_ms: float | None
    max_latency_p99_ms: float | None
    latency_batch_sizes: Sequence[int]
    latency_iterations: float
    max_latency_regression: float | None
    max_model_size: int | None
    robustness: bool
    missing_values: Missing
    serve_check: bool
    serve_only: bool
    report: str
    limits: Mapping[str, float | None] = field(default_factory=dict)
    """The limit of each row of mlcicd.gate_table.THRESHOLDS, by its option (None: no gate)."""
    probe_options: Mapping[str, str] = field(default_factory=dict)
    """The level (fail, warn, off) of each probe, by its option in PROBE_OPTIONS."""

    @property
    def compare(self) -> bool:
        """Whether a baseline alias is named (`compare-to: none` turns the comparison off)."""
        return self.compare_to.lower() not in ("", "none")

    @property
    def primary(self) -> str:
        """The metric the improvement gate compares."""
        return self.primary_metric or ("f1" if self.task == "classification" else "rmse")

    @property
    def probe_levels(self) -> dict[str, str]:
        """{probe: fail | warn} of the probes to run: none with `robustness: false`, and none whose
        level is `off`."""
        if not self.robustness:
            return {}
        return {
            probe: self.probe_options[option]
            for option, probe, *_ in PROBE_OPTIONS
            if self.probe_options[option] != "off"
        }


def probe_option(probe: str) -> str:
    """The option that sets a probe's level."""
    return next(option for option, name, *_ in PROBE_OPTIONS if name == probe)


def settings_from(values: Mapping[str, Any]) -> Settings:
    """The settings from the resolved options. The options of a table (a threshold per row of
    THRESHOLDS, a level per probe) arrive as one mapping each, so a new row needs no new field."""
    limits = {row.option: values[row.option] for row in THRESHOLDS}
    probes = {option: values[option] for option, *_ in PROBE_OPTIONS}
    return build_settings(Settings, {**values, "limits": limits, "probe-options": probes})

"""Options of a stage, and the `mlcicd.yaml` loader.

One `Option` declares a setting once; it is then the action input (`INPUT_<NAME>` in the
step's env), the CLI flag (`--name`) and the key under the stage's section of `mlcicd.yaml`.
Precedence, lowest first: documented default, `mlcicd.yaml`, action input, CLI flag.
Unknown keys are errors that name the key path and the closest valid key.
"""

from __future__ import annotations

import difflib
import os
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from mlcicd.errors import UsageError
from mlcicd.yaml_config import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_VALUES,
    expanded_size,
    load_config_file,
    parse_yaml,
)

__all__ = ["MAX_CONFIG_BYTES", "MAX_CONFIG_VALUES", "expanded_size", "load_config_file", "parse_yaml"]

DEFAULT_CONFIG = "mlcicd.yaml"
SECTIONS = "config-sections"
"""The key under which `resolve` keeps all checked sections of the config file."""

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxdict = 4
_SHOWN.maxlevel = 2


def shown(value: Any) -> str:
    """repr() for an error message, bounded: a value can be a nested list of any size."""
    return _SHOWN.repr(value)


@dataclass(frozen=True)
class Option:
    """A stage setting. `parse` turns a raw value (YAML scalar or string) into a typed one or raises
    ValueError."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    example: str = ""
    is_path: bool = False
    aliases: tuple[str, ...] = ()
    """Other CLI flag names accepted for this option (e.g. a seed's `--max-latency-p99`)."""
    shown_default: str = ""
    """The default as a user would write it (`5m`, not 300.0), where the typed value reads worse."""

    @property
    def env_name(self) -> str:
        return "INPUT_" + self.name.upper().replace("-", "_")


# --- parsers: each raises ValueError with a message that says what was expected ---


def text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("expected a single value, not a list or mapping")
    return "" if value is None else str(value)


def number(
    *, minimum: float | None = None, maximum: float | None = None, positive: bool = False
) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number, not a boolean")
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{shown(value)} is not a number") from None
        if result != result or result in (float("inf"), float("-inf")):
            raise ValueError(f"{shown(value)} is not a finite number")
        if positive and result <= 0:
            raise ValueError(f"{result:g} must be greater than 0")
        if minimum is not None and result < minimum:
            raise ValueError(f"{result:g} is below the minimum {minimum:g}")
        if maximum is not None and result > maximum:
            raise ValueError(f"{result:g} is above the maximum {maximum:g}")
        return result

    return parse


def text_list(value: Any) -> list[str]:
    """A YAML list, or a comma/newline separated string as an action input carries one (paths, globs)."""
    if isinstance(value, list):
        items = [text(v) for v in value]
    else:
        items = text(value).replace("\n", ",").split(",")
    return [item.strip() for item in items if item.strip()]


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        result = text(value).strip().lower()
        if result not in choices:
            raise ValueError(f"{shown(value)} is not one of: {', '.join(choices)}")
        return result

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = text(value).strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"{shown(value)} is not true or false")


def whole_number(*, minimum: int = 0, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        result = text(value).strip()
        if isinstance(value, bool) or not result.isdigit():
            raise ValueError(f"{shown(value)} is not a whole number ≥ {minimum}")
        if int(result) < minimum or (maximum is not None and int(result) > maximum):
            raise ValueError(
                f"{shown(value)} is not between {minimum} and {maximum}"
                if maximum is not None
                else f"{shown(value)} is below {minimum}"
            )
        return int(result)

    return parse


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(value: Any) -> float:
    """`30s`, `5m`, `1h`, `250ms` or a number of seconds → seconds."""
    match = DURATION.match(text(value)) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(f"{shown(value)} is not a duration such as 30s, 5m or 1h")
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{shown(value)} must be longer than 0")
    return seconds


def closest(name: str, candidates: Sequence[str]) -> str:
    """' (did you mean `x`?)' for the closest candidate, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


def check_config(
    data: Mapping[str, Any], sections: Mapping[str, Sequence[Option]], path: Path
) -> dict[str, dict[str, Any]]:
    """Validate every section (not only the running stage's), so a typo anywhere fails early."""
    parsed: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in sections:
            raise UsageError(
                "unknown config section",
                f"{path}: `{section}` is not a stage{closest(str(section), list(sections))}. Valid sections: "
                f"{', '.join(sections)}; "
                "rename or remove it.",
                file=str(path),
            )
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise UsageError(
                "config section has the wrong shape",
                f"{path}: `{section}` must be a mapping of options.",
                file=str(path),
            )
        options = {opt.name: opt for opt in sections[section]}
        parsed[section] = {}
        for key, value in values.items():
            if key not in options:
                raise UsageError(
                    "unknown config key",
                    f"{path}: `{section}.{key}` is not an option of "
                    f"{section}{closest(str(key), list(options))}.",
                    file=str(path),
                )
            option = options[key]
            if value is None:
                continue  # `key:` with no value means the documented default, as an empty action input does
            parsed[section][key] = _parse(option, value, f"{path}: `{section}.{key}`", path)
            if option.is_path and parsed[section][key]:
                value = parsed[section][key]
                parsed[section][key] = (
                    [_relative_to(v, path.parent) for v in value]
                    if isinstance(value, list)
                    else _relative_to(value, path.parent)
                )
    return parsed


def _relative_to(value: str, base: Path) -> str:
    # Paths in the config file are relative to the file, as in pyproject.toml and other tools' configs.
    if re.match(r"^[\w.]+:[\w.]+$", value) and not Path(value).exists():
        return value  # `module:attribute`, not a path
    candidate = Path(value)
    return value if candidate.is_absolute() else os.path.normpath(base / candidate)


def _parse(option: Option, value: Any, where: str, file: Path | None = None) -> Any:
    try:
        return option.parse(value)
    except ValueError as exc:
        hint = f" Example: `{option.example}`." if option.example else ""
        raise UsageError(
            f"invalid value for {option.name}", f"{where}: {exc}.{hint}", file=str(file) if file else None
        ) from None


def resolve(
    stage: str,
    options: Sequence[Option],
    sections: Mapping[str, Sequence[Option]] | None,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """Merge defaults < config file < action inputs (env) < CLI flags into one typed mapping.

    `sections` None means the command reads no config file (e.g. `mlcicd profile`).
    """
    config_flag = flags.get("config") or env.get("INPUT_CONFIG") or ""
    values: dict[str, Any] = {opt.name: opt.default for opt in options}
    values["config"] = ""
    values[SECTIONS] = {}
    config_path = Path(config_flag) if config_flag else Path(DEFAULT_CONFIG)
    if sections is not None and (config_flag or config_path.is_file()):
        if not config_path.is_file():
            raise UsageError(
                "config file not found",
                f"{config_path} does not exist. Pass the path of your mlcicd.yaml as `config`, or leave it "
                "empty.",
                file=str(config_path),
            )
        parsed = check_config(load_config_file(config_path), sections, config_path)
        values.update(parsed.get(stage, {}))
        values["config"] = str(config_path)
        values[SECTIONS] = parsed
    for option in options:
        raw = env.get(option.env_name, "")
        if raw.strip():
            values[option.name] = _parse(option, raw, f"input `{option.name}`")
        flag = flags.get(option.name)
        if flag is not None:
            values[option.name] = _parse(option, flag, f"--{option.name}")
    return values


@dataclass(frozen=True)
class Stage:
    """A subcommand. `run` is called with the resolved option values and returns an exit code."""

    name: str
    summary: str
    options: tuple[Option, ...]
    run: Callable[[dict[str, Any]], int]
    outputs: tuple[tuple[str, str], ...] = ()
    has_config_section: bool = True
    positional: str | None = None
    """An option that may also be given as the first positional argument (`mlcicd history churn`)."""


SettingsT = TypeVar("SettingsT")


def build_settings(cls: type[SettingsT], values: Mapping[str, Any]) -> SettingsT:
    """A stage's frozen settings dataclass from the resolved values: the field `model_uri` is the option
    `model-uri`. A field without a value is a bug in the stage, so it fails loudly here, once."""
    known = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    given = {key.replace("-", "_"): value for key, value in values.items()}
    return cls(**{name: given[name] for name in known if name in given})


def section_of(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """Another stage's section of the same config file, checked and with its paths resolved, for a stage
    that falls back on it (train-gpu on validate-data's `reference`, monitor on canary-shift's `router`).
    `resolve` keeps every checked section, so no stage needs to know another stage's options."""
    sections: Mapping[str, dict[str, Any]] = values.get(SECTIONS) or {}
    return sections.get(section, {})

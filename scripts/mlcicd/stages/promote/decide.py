"""promote's decisions: what `model-uri` / `version` name, which alias may move, whether gates are
required, and the report. Pure: no registry, no MLflow. The alias plans themselves are shared with
monitor and live in mlcicd.promotion."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlcicd import __version__
from mlcicd.errors import UsageError
from mlcicd.promotion import PREVIOUS, PRODUCTION, AliasMove

from .settings import Settings

NAME = "promote"
REPORT_EVENTS = 20
RESERVED_ALIASES = re.compile(r"^(latest|[vV]\d+)$")
ALIAS_CHARS = re.compile(r"^[\w-]{1,255}$")
"""MLflow's rules for alias names: `latest` and `v<number>` are reserved; alphanumerics, `_` and `-`."""


@dataclass(frozen=True)
class Source:
    """What model-uri / version names. kind: run, logged (both register), version, alias (both resolve)."""

    kind: str
    name: str = ""
    run_id: str = ""
    path: str = ""
    model_id: str = ""
    version: str = ""
    alias: str = ""

    @property
    def registers(self) -> bool:
        return self.kind in ("run", "logged")


def parse_source(model_uri: str, version: str) -> Source:
    """Parse `model-uri` (or `version`) into a Source; a malformed URI is a UsageError naming the accepted
    forms."""
    forms = "runs:/<run_id>/<path>, models:/m-<id>, models:/<name>/<version> or models:/<name>@<alias>"
    if model_uri and version:
        raise UsageError(
            "model given twice", f"pass either `model-uri` ({model_uri}) or `version` ({version}), not both."
        )
    if version:
        return Source("version", version=version)
    if not model_uri:
        raise UsageError(
            "no model to promote", f"pass `model-uri` ({forms}) or `version` (an existing version number)."
        )
    uri = model_uri.strip()
    if m := re.fullmatch(r"runs:/+([0-9A-Za-z_-]+)/(.+)", uri):
        return Source("run", run_id=m.group(1), path=m.group(2).strip("/"))
    if m := re.fullmatch(r"models:/+(m-[0-9A-Za-z]+)", uri):
        return Source("logged", model_id=m.group(1))
    if m := re.fullmatch(r"models:/+([^/@]+)/(\d+)", uri):
        return Source("version", name=m.group(1), version=str(int(m.group(2))))
    if m := re.fullmatch(r"models:/+([^/@]+)@([\w-]+)", uri):
        return Source("alias", name=m.group(1), alias=m.group(2))
    if m := re.fullmatch(r"models:/+([^/@]+)/([^/]+)", uri):
        raise UsageError(
            "unsupported model-uri",
            f"`{uri}` names `{m.group(2)}`, a stage or `latest`; stages are deprecated in MLflow. Use a "
            "version number "
            f"(models:/{m.group(1)}/3) or an alias (models:/{m.group(1)}@staging).",
        )
    raise UsageError(
        "malformed model-uri", f"`{uri}` is not one of: {forms}. Pass `model-uri` in one of these forms."
    )


def check_alias(alias: str, mode: str) -> str:
    alias = alias.strip() or (PRODUCTION if mode == "rollback" else "staging")
    if not ALIAS_CHARS.fullmatch(alias):
        raise UsageError(
            "invalid alias",
            f"`{alias}`: an alias has only letters, digits, `_` and `-` (at most 255). Choose another "
            "`alias`.",
        )
    if RESERVED_ALIASES.fullmatch(alias):
        raise UsageError(
            "invalid alias",
            f"`{alias}` is reserved by MLflow (`latest` and `v<number>` are version references). Choose "
            "another `alias`.",
        )
    if alias == PREVIOUS:
        raise UsageError(
            "alias managed by promote",
            f"`{PREVIOUS}` is set by promoting to `{PRODUCTION}` and used by `mode: rollback`; promote to "
            f"`{PRODUCTION}` instead.",
        )
    if mode == "rollback" and alias != PRODUCTION:
        raise UsageError(
            "rollback needs alias production",
            f"rollback moves `{PRODUCTION}` back to `{PREVIOUS}`; `{alias}` keeps no previous version. "
            f"To move `{alias}`, promote the version you want with `version`.",
        )
    return alias


def gates_required(setting: str, alias: str, mode: str) -> bool:
    if setting == "auto":
        return alias == PRODUCTION and mode == "promote"
    return setting == "true"


def subject(settings: Settings) -> tuple[Source | None, str]:
    """The model to promote (None for a rollback) and the registered model's name; a UsageError when
    the options contradict each other or name no model."""
    if settings.rollback:
        given = [
            n
            for n, v in (
                ("model-uri", settings.model_uri),
                ("version", settings.version),
                ("gates-passed", settings.gates_passed),
            )
            if v not in ("", None)
        ]
        if given:
            raise UsageError(
                "option not used by rollback",
                f"rollback restores `{PREVIOUS}`; drop {', '.join(f'`{n}`' for n in given)} (or use `mode: "
                "promote`).",
            )
        source = None
        name = settings.model_name.strip()
    else:
        source = parse_source(settings.model_uri.strip(), settings.version)
        name = settings.model_name.strip() or source.name
        if source.name and name != source.name:
            raise UsageError(
                "model-uri names another model",
                f"`{settings.model_uri}` is a version of `{source.name}`, but `model-name` is `{name}`. "
                "Leave `model-name` empty or pass a URI of that model.",
            )
    if not name:
        raise UsageError(
            "missing model-name", "pass `model-name`, the registered model to promote, e.g. `churn`."
        )
    return source, name


def build_report(move: AliasMove, tracking_uri: str) -> dict[str, Any]:
    return {
        "stage": NAME,
        "version": __version__,
        "passed": move.status != "refused",
        "outcome": move.status,
        "message": move.message,
        "model": move.model,
        "alias": move.alias,
        "mode": move.mode,
        "model_uri": f"models:/{move.model}@{move.alias}",
        "tracking_uri": tracking_uri,
        "model_version": move.version,
        "previous_version": move.from_version,
        "registration": move.registration,
        "tags": move.tags,
        "gates": {"required": move.gates_required, "passed": move.tags.get("mlcicd.gates.passed")},
        "aliases": {"before": move.aliases_before, "after": move.aliases_after},
        "event": move.event,
        "history": move.history[-REPORT_EVENTS:],
    }

"""Reading the MLflow registry with errors a user can act on: an unknown model, version or alias
is a UsageError that lists what exists, instead of MLflow's RESOURCE_DOES_NOT_EXIST."""

from __future__ import annotations

import os
from typing import Any

from mlcicd.config import text
from mlcicd.errors import UsageError

LISTED = 20
"""Names listed in an error message: enough to spot a typo, short enough to read."""


def version_number(value: Any) -> str:
    result = text(value).strip()
    if result and (not result.isdigit() or int(result) < 1):
        raise ValueError(f"{value!r} is not a version number (1, 2, …)")
    return str(int(result)) if result else ""


def search_literal(value: str) -> str:
    """A string literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise UsageError(
        "unsupported name", f"`{value}` contains both kinds of quote; MLflow cannot search for it."
    )


def not_found(exc: Exception) -> bool:
    return (
        getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        or "not found" in str(exc).lower()
    )


def store() -> str:
    from mlcicd.tracking import redact

    return redact(os.environ.get("MLFLOW_TRACKING_URI", ""))


def listing(items: list[str], none: str) -> str:
    if not items:
        return none
    more = " …" if len(items) >= LISTED else ""
    return ", ".join(items) + more


def get_model(client: Any, name: str) -> Any:
    """The registered model, or a UsageError listing the models that exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not not_found(exc):
            raise
    names = [m.name for m in client.search_registered_models(max_results=LISTED, order_by=["name ASC"])]
    raise UsageError(
        "unknown model",
        f"no registered model `{name}` in {store()}. Registered models: {listing(names, 'none')}. "
        "Register it by promoting a `model-uri` of the form runs:/<run_id>/<path> or models:/m-<id>.",
    )


def model_exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException as exc:
        if not_found(exc):
            return False
        raise


def _versions(client: Any, name: str) -> list[str]:
    found = client.search_model_versions(
        f"name={search_literal(name)}", max_results=LISTED, order_by=["version_number DESC"]
    )
    return [str(v.version) for v in found]


def get_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if not not_found(exc):
            raise
    raise UsageError(
        "unknown version",
        f"`{name}` has no version {version}. Versions (newest first): "
        f"{listing(_versions(client, name), 'none')}. Pass one of them as `version`.",
    )


def get_by_alias(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if not not_found(exc):
            raise
    aliases = get_model(client, name).aliases
    shown = ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) or "none"
    raise UsageError(
        "unknown alias",
        f"`{name}` has no alias `{alias}`. Aliases: {shown}. Use one of them, or a version number.",
    )

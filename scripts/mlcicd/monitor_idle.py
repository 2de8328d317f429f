"""monitor before the first rollout: with no version at the watched alias yet (no `@production`, or
no registered model at all), there is nothing to watch. The scheduled job says so in a notice and
passes, instead of failing every hour with advice it cannot follow."""

from __future__ import annotations

import json
from typing import Any

from mlcicd.errors import PASSED
from mlcicd.outcome import Annotation, Outcome
from mlcicd.registry import LISTED, listing, model_exists, not_found

STATUS = "not-deployed"
"""monitor's `status` output when nothing is at the watched alias yet."""


def waiting_reason(name: str, alias: str, aliases: dict[str, str] | None, models: list[str]) -> str:
    """Why there is nothing to watch. `aliases` is None when no model `name` is registered."""
    if aliases is None:
        return (
            f"no registered model `{name}` yet (registered models: {listing(models, 'none')}); "
            f"monitor starts watching once a rollout has put a version at @{alias}."
        )
    shown = ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) or "none"
    return (
        f"`{name}` has no @{alias} yet (aliases: {shown}); monitor starts watching once a rollout has put a "
        "version there."
    )


def watched_version(client: Any, name: str, alias: str) -> tuple[Any | None, str]:
    """(the version at `alias`, "") or (None, why there is nothing to watch yet)."""
    from mlflow.exceptions import MlflowException

    if not model_exists(client, name):
        models = [m.name for m in client.search_registered_models(max_results=LISTED, order_by=["name ASC"])]
        return None, waiting_reason(name, alias, None, models)
    try:
        return client.get_model_version_by_alias(name, alias), ""
    except MlflowException as exc:
        if not not_found(exc):
            raise
    aliases = {str(a): str(v) for a, v in client.get_registered_model(name).aliases.items()}
    return None, waiting_reason(name, alias, aliases, [])


def nothing_to_watch(name: str, alias: str, why: str, report: str, tracking_uri: str) -> Outcome:
    """A monitor run with nothing to watch: a notice, the usual outputs, a short summary; exit 0."""
    body = {"model": {"name": name, "alias": alias, "version": None}, "status": STATUS}
    body.update(tracking_uri=tracking_uri, headline=why, actions={})
    outputs = {"status": STATUS, "rolled-back": "false", "retrain-dispatched": "false"}
    outputs.update({"drifted-features": json.dumps([]), "quality": ""})
    summary = f"### ml-cicd monitor: ⏸️ nothing to watch yet\n\n{why}"
    notice = Annotation("notice", f"monitor: nothing to watch yet for {name}", why)
    return Outcome("monitor", PASSED, STATUS, body, report, outputs, summary, (notice,))

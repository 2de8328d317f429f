"""A rollout's life around the traffic shift: what must hold before traffic moves, the deploy
command that puts a version on a server, and the registry's record of what is served.

After every rollout, whatever its result, the stable server serves `@production` and the canary
carries nothing, so the next rollout starts from the same place:

- before anything changes, the version's check-gates verdict must be `true` (or a `force` with a
  `reason`, recorded in the history), and the canary must carry no traffic;
- the deploy command puts the version on the canary server (`DEPLOY_TARGET=canary`), the shift
  judges it step by step, and at 100 % the same command puts it on the stable server
  (`DEPLOY_TARGET=stable`), which is checked before traffic goes back to it (the handoff);
- the registered model carries one `mlcicd.rollout` tag (version, state, weight, the version on
  stable) and an `alias: traffic` event in its history for every change of what is served.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlcicd import github
from mlcicd.routers import Weights

TAG_ROLLOUT = "mlcicd.rollout"
"""Registered-model tag: JSON {version, state, weight, stable, updated, run} of the latest rollout."""
TAG_ABORT = "mlcicd.rollout.abort"
"""Registered-model tag: JSON {requested, actor, reason}; a running rollout rolls back when it sees it."""
RUNNING = "running"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    override: bool
    message: str


def gate_decision(verdict: str | None, *, force: bool, reason: str, name: str, version: str) -> GateDecision:
    """Traffic only moves for a version whose check-gates verdict passed, or with a recorded override."""
    if verdict == "true":
        return GateDecision(True, False, "")
    state = (
        f"its verdict is `{verdict}`"
        if verdict is not None
        else "it has no check-gates verdict (`mlcicd.gates.passed`)"
    )
    if force:
        return GateDecision(
            True, True, f"version {version} of `{name}` is rolled out although {state}: forced ({reason})."
        )
    return GateDecision(
        False,
        False,
        f"version {version} of `{name}` has not passed the quality gates: {state}. No traffic moved. "
        f"Run check-gates on `models:/{name}/{version}`, or set `force: true` with a `reason` to roll it out "
        "anyway "
        "(the override is recorded in the history).",
    )


def busy_canary_message(before: Weights, router: str, recorded: dict[str, Any] | None) -> str | None:
    """Why a rollout must not start: the canary already carries traffic (a rollout running, frozen,
    handed over half way, or a router that lost its weights). None when it carries none."""
    if not before.canary and not before.shadow:
        return None
    known = ""
    if recorded:
        known = (
            f" The registry's last record: version {recorded.get('version', '?')} "
            f"`{recorded.get('state', '?')}` "
            f"at canary {recorded.get('weight', '?')} % ({recorded.get('updated', '?')})."
        )
    return (
        f"{router} has {before.describe()} before this rollout, so the canary server may be serving "
        f"users.{known} "
        "Nothing was changed. Put all traffic back on stable first: rerun with `mode: restore` (deploy.yml "
        "`mode: restore`), "
        "or `mode: abort` to stop a rollout that is still running."
    )


def abort_applies(request: dict[str, Any] | None, started: float) -> bool:
    """An abort request counts for the rollout that was running when it was made, not for later ones."""
    if not request:
        return False
    try:
        requested = datetime.fromisoformat(str(request.get("requested", ""))).timestamp()
    except ValueError:
        return False
    return requested >= started - 1  # a second of clock skew between the two runners


# --- the registry's record -------------------------------------------------------------------------


class RolloutRecord:
    """Best-effort record of a rollout in the registry: traffic safety never waits on MLflow.

    Version tags (`mlcicd.canary.*`) say what happened to that version; the registered model's
    `mlcicd.rollout` tag says what happens now, and its history says what changed."""

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version
        self.client: Any = None
        self.warned = False

    def connect(self) -> None:
        if not self.name:
            return
        from mlflow import MlflowClient

        from mlcicd import tracking
        from mlcicd.registry import get_model, get_version

        tracking.connect()
        self.client = MlflowClient()
        get_model(self.client, self.name)
        if self.version:
            get_version(self.client, self.name, self.version)
        # From here on a tag write must not hold traffic at a step for minutes of MLflow retries.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"

    def _warn(self, exc: Exception) -> None:
        if not self.warned:
            self.warned = True
            github.warning(
                f"could not record the rollout on `{self.name}` ({type(exc).__name__}); "
                "traffic is handled either way, and the report has the full record.",
                title="canary-shift: registry unavailable",
            )

    def model_tags(self) -> dict[str, str]:
        if self.client is None:
            return {}
        try:
            return dict(self.client.get_registered_model(self.name).tags or {})
        except Exception:  # noqa: BLE001 - a record to show, never a reason to fail
            return {}

    def version_tags(self, version: str | None = None) -> dict[str, str] | None:
        if self.client is None:
            return None
        try:
            return dict(self.client.get_model_version(self.name, version or self.version).tags or {})
        except Exception:  # noqa: BLE001
            return None

    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except Exception:  # noqa: BLE001 - an alias that is not set
            return None

    def current(self) -> dict[str, Any] | None:
        """The model's `mlcicd.rollout` record, if any."""
        return _json(self.model_tags().get(TAG_ROLLOUT))

    def recorded(self) -> dict[str, str] | None:
        """The canary state a previous run left on the version (state, weight, updated), if any."""
        from mlcicd import tracking

        tags = self.version_tags()
        if not tags:
            return None
        keys = {
            "state": tracking.TAG_CANARY_STATE,
            "weight": tracking.TAG_CANARY_WEIGHT,
            "updated": tracking.TAG_CANARY_UPDATED,
        }
        found = {name: tags[key] for name, key in keys.items() if key in tags}
        return found or None

    def record(self, state: str, weight: float | None, *, stable: str | None = None) -> None:
        """The state on the version, and the model's current rollout."""
        if self.client is None or not self.version:
            return
        from mlcicd import tracking

        updated = now_iso()
        tags = {tracking.TAG_CANARY_STATE: state, tracking.TAG_CANARY_UPDATED: updated}
        if weight is not None:
            tags[tracking.TAG_CANARY_WEIGHT] = f"{weight:g}"
        previous = self.current() or {}
        rollout = {
            "version": self.version,
            "state": state,
            "weight": weight,
            "stable": stable if stable is not None else previous.get("stable"),
            "updated": updated,
            "run": tracking.git_context().get("run_url", ""),
        }
        try:
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, self.version, key, value)
            self.client.set_registered_model_tag(
                self.name, TAG_ROLLOUT, json.dumps(rollout, separators=(",", ":"))
            )
        except Exception as exc:  # noqa: BLE001 - recorded in the report either way
            self._warn(exc)

    def event(self, mode: str, from_version: str | None, to_version: str | None, reason: str) -> None:
        """One `alias: traffic` entry in the model's history."""
        if self.client is None:
            return
        from mlcicd import history, tracking

        event = history.make_event(
            history.TRAFFIC,
            mode,
            from_version,
            to_version,
            reason,
            tracking.git_context(),
            datetime.now(timezone.utc),
        )
        try:
            with tracking.registry_lock(self.name, timeout=60):
                history.append(self.client, self.name, event)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    def request_abort(self, reason: str) -> None:
        from mlcicd import tracking

        request = {"requested": now_iso(), "actor": tracking.git_context().get("actor", ""), "reason": reason}
        self.client.set_registered_model_tag(self.name, TAG_ABORT, json.dumps(request, separators=(",", ":")))

    def abort_request(self) -> dict[str, Any] | None:
        return _json(self.model_tags().get(TAG_ABORT))

    def clear_abort(self) -> None:
        try:
            self.client.delete_registered_model_tag(self.name, TAG_ABORT)
        except Exception:  # noqa: BLE001 - a stale request is ignored by later rollouts anyway
            pass


def _json(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None

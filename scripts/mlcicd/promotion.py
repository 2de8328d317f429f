"""Moving a registry alias with its history: the operation promote, monitor (and canary-shift) share.

The registry is the source of truth: aliases say where each version is, and every alias move is one
registered-model tag `mlcicd.history.<time>-<hex>` holding a JSON event (mlcicd.history). Every
read-decide-write happens under `tracking.registry_lock(model)`, so two jobs racing on one model are
serialised and never leave `production` and `previous-production` inconsistent.

`plan_promote` and `plan_rollback` are pure; `move_alias` and `roll_back` read and write the registry.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlcicd.history import HISTORY_PREFIX, make_event, next_event_key, read_history
from mlcicd.registry import get_model, get_version, not_found

PRODUCTION = "production"
PREVIOUS = "previous-production"


# --- plans (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Alias changes in the order they are applied: (alias, version) sets, None = delete."""

    changes: tuple[tuple[str, str | None], ...]
    from_version: str | None
    to_version: str | None


def plan_promote(aliases: Mapping[str, str], alias: str, target: str) -> Plan | None:
    """None when the alias already points at the target (a no-op)."""
    current = aliases.get(alias)
    if current == target:
        return None
    changes: list[tuple[str, str | None]] = []
    if alias == PRODUCTION and current is not None:
        changes.append(
            (PREVIOUS, current)
        )  # first: a crash between the two writes leaves production as it was
    changes.append((alias, target))
    return Plan(tuple(changes), current, target)


def plan_rollback(aliases: Mapping[str, str], history: list[dict[str, Any]]) -> Plan | str:
    """The rollback plan, or a message saying why there is nothing to roll back to."""
    current, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
    if previous is None:
        return f"`{PREVIOUS}` is not set"
    if previous == current:
        return f"`{PREVIOUS}` points at version {previous}, which is already `{PRODUCTION}`"
    # previous-production becomes what preceded the restored version when it was last made production,
    # skipping events whose `from` is the version being rolled back (it must not come back on the next
    # rollback).
    before = None
    for event in reversed(history):
        if event.get("alias") == PRODUCTION and event.get("to") == previous:
            candidate = event.get("from")
            if candidate and candidate not in (current, previous):
                before = candidate
                break
    return Plan(((PRODUCTION, previous), (PREVIOUS, before)), current, previous)


# --- one alias move ---------------------------------------------------------------------------


@dataclass
class AliasMove:
    """One alias move as it goes: filled in step by step, so that a refused move still says what it saw."""

    model: str
    alias: str
    mode: str  # promote | rollback
    status: str = ""  # promoted | unchanged | rolled-back | refused
    message: str = ""
    version: str | None = None
    from_version: str | None = None
    registration: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    gates_required: bool = False
    aliases_before: dict[str, str] = field(default_factory=dict)
    aliases_after: dict[str, str] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    refusal_title: str = ""


class Refused(Exception):
    """The move is not made (the alias moved meanwhile, nothing to roll back to, gates not passed)."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


Target = Callable[[Any, AliasMove], None]
"""For mode promote: under the lock, set `move.version` (and `move.tags`, `move.registration`) to the
version the alias should point at, registering it if needed. Called with the MLflow client."""


def check_gates(name: str, alias: str, version: str, tags: Mapping[str, str]) -> None:
    from mlcicd import tracking

    value = tags.get(tracking.TAG_GATES_PASSED)
    if value == "true":
        return
    state = (
        f"`{tracking.TAG_GATES_PASSED}` is `{value}`"
        if value is not None
        else f"it has no `{tracking.TAG_GATES_PASSED}` tag"
    )
    raise Refused(
        "gates not passed",
        f"version {version} of `{name}` has not passed the quality gates ({state}), and `{alias}` requires "
        "them. "
        f"Run check-gates on version {version}, or pass `gates-passed: true` if the gates ran elsewhere, "
        "or `require-gates: false` to promote it anyway.",
    )


def move_alias(
    client: Any, move: AliasMove, *, expected: str = "", reason: str = "", target: Target | None = None
) -> None:
    """Under the registry lock: refuse unless `move.alias` points at `expected` ('' = anything, `none` =
    unset),
    plan the move (rollback: from the history; promote: to the version `target` sets), check the gates when
    `move.gates_required`, apply it and record one history event. Fills `move`; raises Refused."""
    from mlcicd import tracking

    name, alias, mode = move.model, move.alias, move.mode
    with tracking.registry_lock(name):
        model = client.get_registered_model(name)
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        history = read_history(dict(model.tags or {}))
        move.aliases_before = move.aliases_after = aliases
        move.history = history
        current = aliases.get(alias)
        move.from_version = current
        if expected and (current or "none") != expected:
            where = f"points at version {current}" if current else "is not set"
            raise Refused(
                "alias moved",
                f"`{name}@{alias}` {where}, but `expected-current-version` is {expected}: another job moved "
                "it. "
                "Check the history (`mlcicd history`) and rerun with the current version if this promotion "
                "still applies.",
            )
        if mode == "rollback":
            plan = plan_rollback(aliases, history)
            if isinstance(plan, str):
                raise Refused(
                    "nothing to roll back to",
                    f"`{name}` cannot roll back: {plan}. Promote a known-good version to `{PRODUCTION}` with "
                    "`version` instead.",
                )
            assert plan.to_version is not None
            move.version = plan.to_version
            move.tags = dict(get_version(client, name, plan.to_version).tags or {})
            if move.gates_required:
                check_gates(name, alias, plan.to_version, move.tags)
        else:
            assert target is not None
            target(client, move)
            assert move.version is not None
            if move.gates_required:
                check_gates(name, alias, move.version, move.tags)
            promoted = plan_promote(aliases, alias, move.version)
            if promoted is None:
                move.status = "unchanged"
                move.message = f"`{name}@{alias}` already points at version {move.version}; nothing to do."
                return
            plan = promoted
        apply(client, name, plan)
        now = datetime.now(timezone.utc)
        event = make_event(
            alias, mode, plan.from_version, plan.to_version, reason, tracking.git_context(), now
        )
        key = next_event_key(
            [k for k in model.tags if k.startswith(HISTORY_PREFIX)], now, secrets.token_hex(2)
        )
        client.set_registered_model_tag(name, key, json.dumps(event, separators=(",", ":")))
        after = client.get_registered_model(name)
        move.aliases_after = {a: str(v) for a, v in (after.aliases or {}).items()}
        move.history = read_history(dict(after.tags or {}))
        move.event = {"id": key[len(HISTORY_PREFIX) :], **event}
        move.status = "rolled-back" if mode == "rollback" else "promoted"
        arrow = f"{plan.from_version or '(none)'} → {plan.to_version}"
        move.message = f"`{name}@{alias}`: {arrow}."


def roll_back(client: Any, move: AliasMove, *, expected: str = "", reason: str = "") -> None:
    """`production` ← `previous-production` for `move.model` (a UsageError when the model is unknown)."""
    get_model(client, move.model)
    move_alias(client, move, expected=expected, reason=reason)


def apply(client: Any, name: str, plan: Plan) -> None:
    from mlflow.exceptions import MlflowException

    for alias, version in plan.changes:
        if version is not None:
            client.set_registered_model_alias(name, alias, version)
            continue
        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException as exc:
            if not not_found(exc):
                raise

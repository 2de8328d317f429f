"""A model's history in the registry: one registered-model tag `mlcicd.history.<UTC time>-<hex>` per
event, holding a JSON object (time, actor, commit, workflow run, alias, mode, from, to, reason).

promote writes an event for every alias move; canary-shift writes one for every change of what is
served (a rollout handed over, rolled back, restored, aborted, a forced rollout of an ungated
version), with `alias: traffic`. `mlcicd history <model>` shows them all, oldest first.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

HISTORY_PREFIX = "mlcicd.history."
KEY_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
REASON_MAX = 1000
TRAFFIC = "traffic"
"""The `alias` of events about what the router sends where, rather than about a registry alias."""


def next_event_key(existing: list[str], now: datetime, suffix: str) -> str:
    """`mlcicd.history.<UTC time>-<hex>`: sorts by time, and always after every existing key
    (a runner whose clock is behind still appends, so the history stays in the order it happened)."""
    stamp = now.astimezone(timezone.utc)
    latest = max(existing, default="")
    if latest:
        try:
            then = datetime.strptime(latest[len(HISTORY_PREFIX) :].split("-")[0], KEY_TIME_FORMAT).replace(
                tzinfo=timezone.utc
            )
        except ValueError:
            then = None
        if then is not None and then >= stamp:
            stamp = then + timedelta(microseconds=1)
    return f"{HISTORY_PREFIX}{stamp.strftime(KEY_TIME_FORMAT)}-{suffix}"


def read_history(tags: dict[str, str]) -> list[dict[str, Any]]:
    """History events, oldest first. An unreadable event is kept as a stub rather than hidden."""
    events = []
    for key in sorted(k for k in tags if k.startswith(HISTORY_PREFIX)):
        try:
            event = json.loads(tags[key])
            if not isinstance(event, dict):
                raise ValueError
        except ValueError:
            event = {"reason": f"unreadable history tag: {tags[key][:80]!r}"}
        for end in (
            "from",
            "to",
        ):  # versions are strings everywhere, whatever the store returned when it was written
            if event.get(end) is not None:
                event[end] = str(event[end])
        events.append({"id": key[len(HISTORY_PREFIX) :], **event})
    return events


def make_event(
    alias: str,
    mode: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
    context: dict[str, str],
    now: datetime,
) -> dict[str, Any]:
    return {
        "time": now.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "actor": context.get("actor", ""),
        "commit": context.get("sha", ""),
        "workflow_run": context.get("run_url", ""),
        "alias": alias,
        "mode": mode,
        "from": from_version,
        "to": to_version,
        "reason": reason[:REASON_MAX],
    }


def append(client: Any, name: str, event: dict[str, Any]) -> str:
    """Write `event` as the newest history entry of model `name`; returns its id. The caller holds
    `tracking.registry_lock(name)` where two writers could race on the same model."""
    model = client.get_registered_model(name)
    existing = [k for k in (model.tags or {}) if k.startswith(HISTORY_PREFIX)]
    key = next_event_key(existing, datetime.now(timezone.utc), secrets.token_hex(2))
    client.set_registered_model_tag(name, key, json.dumps(event, separators=(",", ":")))
    return key[len(HISTORY_PREFIX) :]

"""promote: register a model version in MLflow and move a registry alias (`staging`, `production`, …).

Also `mlcicd history <model>`, which prints the promotion history kept in the registry.

The registry is the source of truth: a version carries its lineage as tags (run, commit,
fingerprint, data digest, gate result), aliases say where each version is, and every alias move
is one registered-model tag `mlcicd.history.<time>-<hex>` holding a JSON event. Every
read-decide-write happens under `tracking.registry_lock(model)`, so two jobs racing on one
model are serialised and never leave `production` and `previous-production` inconsistent.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlcicd import __version__, github
from mlcicd.config import Option, Stage, boolean, choice, text, whole_number
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.history import HISTORY_PREFIX, make_event, next_event_key, read_history
from mlcicd.registry import (
    LISTED,
    get_by_alias,
    get_model,
    get_version,
    listing,
    model_exists,
    not_found,
    search_literal,
    store,
    version_number,
)
from mlcicd.report import check_report_path, default_report_path, markdown_table, write_json

NAME = "promote"
PRODUCTION = "production"
PREVIOUS = "previous-production"
SUMMARY_EVENTS = 5
REPORT_EVENTS = 20
RESERVED_ALIASES = re.compile(r"^(latest|[vV]\d+)$")
ALIAS_CHARS = re.compile(r"^[\w-]{1,255}$")
"""MLflow's rules for alias names: `latest` and `v<number>` are reserved; alphanumerics, `_` and `-`."""


# --- option parsers -----------------------------------------------------------------------


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


OPTIONS = (
    Option(
        "model-name",
        text,
        "",
        "the registered model. Created on first registration",
        "churn",
        shown_default="none (required, unless `model-uri` is `models:/<name>/…`)",
    ),
    Option(
        "model-uri",
        text,
        "",
        "the model to register or promote: `runs:/<run_id>/<path>` or `models:/m-<id>` (a logged model: "
        "registered once, then reused), or `models:/<name>/<version>` / `models:/<name>@<alias>` (an "
        "existing version). Give this or `version`",
        "runs:/4f2c…/model",
    ),
    Option("version", version_number, "", "an existing version of `model-name`. Give this or `model-uri`", "3"),
    Option(
        "alias",
        text,
        "",
        "the alias to move: `staging`, `production` or any name of letters, digits, `_` and `-`. `latest` "
        "and `v<number>` are reserved by MLflow; `previous-production` is managed by promote",
        "production",
        shown_default="`staging` (`production` with `mode: rollback`)",
    ),
    Option(
        "mode",
        choice("promote", "rollback"),
        "promote",
        "`promote`: point `alias` at the version. `rollback`: `production` ← `previous-production` (takes "
        "no `model-uri`, `version` or `gates-passed`)",
        "rollback",
    ),
    Option(
        "require-gates",
        require_gates,
        "auto",
        "refuse a version whose tag `mlcicd.gates.passed` is not `true`. `auto`: only when promoting to "
        "`production` (a rollback restores a version that was already in production and is not checked). "
        "`true`: for every alias and for rollbacks. `false`: never",
        "true",
    ),
    Option(
        "gates-passed",
        optional_boolean,
        None,
        "`true` or `false`: write the gate result to the version's `mlcicd.gates.passed` tag before the "
        "gate check (it stays even if the promotion is refused). Empty leaves the tag alone. check-gates "
        "sets the tag itself",
        "true",
    ),
    Option(
        "expected-current-version",
        expected_version,
        "",
        "refuse (exit 1, nothing changed, nothing registered) unless `alias` currently points at this "
        "version. `none`: the alias must not be set yet. Use it when a decision was made against a known "
        "production version (gates compared against it, a reviewer approved replacing it)",
        "2",
    ),
    Option("reason", text, "", "why; recorded in the history event (at most 1,000 characters)", "weekly retrain, gates green"),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/promote.json", is_path=True),
)

HISTORY_OPTIONS = (
    Option("model-name", text, "", "registered model name", "churn"),
    Option("format", choice("markdown", "json"), "markdown", "markdown table or JSON list", "json"),
    Option("limit", whole_number(), 0, "show only the last N events; 0 = all", "20"),
)


# --- pure logic -----------------------------------------------------------------------------


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
    """Parse `model-uri` (or `version`) into a Source; a malformed URI is a UsageError naming the accepted forms."""
    forms = "runs:/<run_id>/<path>, models:/m-<id>, models:/<name>/<version> or models:/<name>@<alias>"
    if model_uri and version:
        raise UsageError("model given twice", f"pass either `model-uri` ({model_uri}) or `version` ({version}), not both.")
    if version:
        return Source("version", version=version)
    if not model_uri:
        raise UsageError("no model to promote", f"pass `model-uri` ({forms}) or `version` (an existing version number).")
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
            f"`{uri}` names `{m.group(2)}`, a stage or `latest`; stages are deprecated in MLflow. Use a version number "
            f"(models:/{m.group(1)}/3) or an alias (models:/{m.group(1)}@staging).",
        )
    raise UsageError("malformed model-uri", f"`{uri}` is not one of: {forms}. Pass `model-uri` in one of these forms.")


def check_alias(alias: str, mode: str) -> str:
    alias = alias.strip() or (PRODUCTION if mode == "rollback" else "staging")
    if not ALIAS_CHARS.fullmatch(alias):
        raise UsageError(
            "invalid alias", f"`{alias}`: an alias has only letters, digits, `_` and `-` (at most 255). Choose another `alias`."
        )
    if RESERVED_ALIASES.fullmatch(alias):
        raise UsageError(
            "invalid alias", f"`{alias}` is reserved by MLflow (`latest` and `v<number>` are version references). Choose another `alias`."
        )
    if alias == PREVIOUS:
        raise UsageError(
            "alias managed by promote",
            f"`{PREVIOUS}` is set by promoting to `{PRODUCTION}` and used by `mode: rollback`; promote to `{PRODUCTION}` instead.",
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


@dataclass(frozen=True)
class Plan:
    """Alias changes in the order they are applied: (alias, version) sets, None = delete."""

    changes: tuple[tuple[str, str | None], ...]
    from_version: str | None
    to_version: str | None


def plan_promote(aliases: dict[str, str], alias: str, target: str) -> Plan | None:
    """None when the alias already points at the target (a no-op)."""
    current = aliases.get(alias)
    if current == target:
        return None
    changes: list[tuple[str, str | None]] = []
    if alias == PRODUCTION and current is not None:
        changes.append((PREVIOUS, current))  # first: a crash between the two writes leaves production as it was
    changes.append((alias, target))
    return Plan(tuple(changes), current, target)


def plan_rollback(aliases: dict[str, str], history: list[dict[str, Any]]) -> Plan | str:
    """The rollback plan, or a message saying why there is nothing to roll back to."""
    current, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
    if previous is None:
        return f"`{PREVIOUS}` is not set"
    if previous == current:
        return f"`{PREVIOUS}` points at version {previous}, which is already `{PRODUCTION}`"
    # previous-production becomes what preceded the restored version when it was last made production,
    # skipping events whose `from` is the version being rolled back (it must not come back on the next rollback).
    before = None
    for event in reversed(history):
        if event.get("alias") == PRODUCTION and event.get("to") == previous:
            candidate = event.get("from")
            if candidate and candidate not in (current, previous):
                before = candidate
                break
    return Plan(((PRODUCTION, previous), (PREVIOUS, before)), current, previous)


# --- registry I/O ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened, for the report, the outputs and the summary."""

    model: str
    alias: str
    mode: str
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


def ensure_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    if model_exists(client, name):
        return
    try:
        client.create_registered_model(name, description="Registered by ml-cicd promote.")
    except MlflowException as exc:
        if getattr(exc, "error_code", "") not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):  # created meanwhile by a concurrent job
            raise


@dataclass(frozen=True)
class Resolved:
    """A model to register: the source URI MLflow stores, its run, its logged model, and lineage tags."""

    source: str
    run_id: str | None
    model_id: str | None
    tags: dict[str, str]


def resolve_registration(client: Any, source: Source) -> Resolved:
    """Read the run / logged model behind a runs:/ or models:/m- URI (read-only)."""
    from mlflow.exceptions import MlflowException

    logged = None
    if source.kind == "logged":
        try:
            logged = client.get_logged_model(source.model_id)
        except MlflowException as exc:
            if not not_found(exc):
                raise
            raise UsageError("unknown logged model", f"no logged model `{source.model_id}` in {store()}; check `model-uri`.") from None
        run_id = logged.source_run_id or None
    else:
        run_id = source.run_id
    run = None
    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if not not_found(exc):
                raise
            raise UsageError("unknown run", f"no run `{run_id}` in {store()}; check `model-uri`.") from None
    if source.kind == "run":
        logged = _logged_model_of_run(client, run, source.path)
        if logged is None:
            artifact_uri = _run_artifact_model(client, run, source.path)
            if artifact_uri is None:
                names = _logged_model_names(client, run)
                raise UsageError(
                    "no model in run",
                    f"run `{run_id}` has no model `{source.path}` (no logged model of that name, no `{source.path}/MLmodel` artifact). "
                    f"Models logged by the run: {listing(names, 'none')}.",
                )
            tags = _lineage(run, None, run_id)
            return Resolved(artifact_uri, run_id, None, tags)
    assert logged is not None
    return Resolved(f"models:/{logged.model_id}", run_id, logged.model_id, _lineage(run, logged, run_id))


def _logged_model_of_run(client: Any, run: Any, path: str) -> Any:
    models = []
    token = None
    while True:
        page = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = {search_literal(path)}", page_token=token
        )
        models += [m for m in page if m.source_run_id == run.info.run_id]
        token = page.token
        if not token:
            break
    if not models:
        return None
    if len(models) > 1 and run.outputs is not None:  # the same name logged at several steps: the last, as MLflow does
        steps = {o.model_id: o.step for o in run.outputs.model_outputs}
        return max(models, key=lambda m: (steps.get(m.model_id, -1), m.creation_timestamp))
    return max(models, key=lambda m: m.creation_timestamp)


def _run_artifact_model(client: Any, run: Any, path: str) -> str | None:
    """An MLflow 2 style model stored in the run's own artifacts (`<path>/MLmodel`)."""
    from mlflow.exceptions import MlflowException

    try:
        files = client.list_artifacts(run.info.run_id, path)
    except (MlflowException, OSError):
        return None
    if any(f.path.rstrip("/").endswith(f"{path}/MLmodel") or f.path == "MLmodel" for f in files):
        return run.info.artifact_uri.rstrip("/") + "/" + path
    return None


def _logged_model_names(client: Any, run: Any) -> list[str]:
    page = client.search_logged_models(experiment_ids=[run.info.experiment_id], max_results=100)
    return sorted({m.name for m in page if m.source_run_id == run.info.run_id})[:LISTED]


def _lineage(run: Any, logged: Any, run_id: str | None) -> dict[str, str]:
    """Version tags copied from the training run (and its logged model): what train-gpu searches by."""
    from mlcicd import tracking

    # the gate verdict too: check-gates run on train-gpu's output tags the run, not yet a version
    wanted = (
        tracking.TAG_FINGERPRINT,
        tracking.TAG_DATA_DIGEST,
        tracking.TAG_GIT_SHA,
        tracking.TAG_GIT_REF,
        tracking.TAG_WORKFLOW_RUN,
        tracking.TAG_GATES_PASSED,
    )
    found: dict[str, str] = {}
    for tags in (dict(logged.tags or {}) if logged is not None else {}, dict(run.data.tags) if run is not None else {}):
        found.update({k: str(v) for k, v in tags.items() if k in wanted and str(v)})
    if tracking.TAG_GIT_SHA not in found and run is not None and run.data.tags.get("mlflow.source.git.commit"):
        found[tracking.TAG_GIT_SHA] = run.data.tags["mlflow.source.git.commit"]
    if run_id:
        found[tracking.TAG_RUN_ID] = run_id
    return found


def find_or_register(client: Any, name: str, resolved: Resolved) -> tuple[Any, str]:
    """The version of `name` made from the same logged model or source, else a new one. Under the lock."""
    clause = f"run_id = {search_literal(resolved.run_id)}" if resolved.run_id else f"source_path = {search_literal(resolved.source)}"
    matches = []
    token = None
    while True:
        page = client.search_model_versions(f"name = {search_literal(name)} and {clause}", page_token=token)
        for v in page:
            same_model = resolved.model_id is not None and getattr(v, "model_id", None) == resolved.model_id
            if same_model or v.source == resolved.source:
                matches.append(v)
        token = page.token
        if not token:
            break
    if matches:
        return min(matches, key=lambda v: int(v.version)), "reused"
    created = client.create_model_version(
        name, resolved.source, run_id=resolved.run_id, tags=resolved.tags, model_id=resolved.model_id, await_creation_for=60
    )
    return created, "created"


def set_tags(client: Any, name: str, version: Any, tags: dict[str, str]) -> dict[str, str]:
    """Set the tags whose value differs; returns the version's tags afterwards."""
    current = dict(version.tags or {})
    for key, value in tags.items():
        if current.get(key) != value:
            client.set_model_version_tag(name, version.version, key, value)
            current[key] = value
    return current


# --- the stage ------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


def run(values: dict[str, Any]) -> int:
    mode = values["mode"]
    alias = check_alias(values["alias"], mode)
    if mode == "rollback":
        given = [n for n in ("model-uri", "version", "gates-passed") if values[n] not in ("", None)]
        if given:
            raise UsageError(
                "option not used by rollback",
                f"rollback restores `{PREVIOUS}`; drop {', '.join(f'`{n}`' for n in given)} (or use `mode: promote`).",
            )
        source = None
        name = values["model-name"].strip()
    else:
        source = parse_source(values["model-uri"].strip(), values["version"])
        name = values["model-name"].strip() or source.name
        if source.name and name != source.name:
            raise UsageError(
                "model-uri names another model",
                f"`{values['model-uri']}` is a version of `{source.name}`, but `model-name` is `{name}`. "
                "Leave `model-name` empty or pass a URI of that model.",
            )
    if not name:
        raise UsageError("missing model-name", "pass `model-name`, the registered model to promote, e.g. `churn`.")

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlcicd import tracking

    uri = tracking.connect()
    check_report_path(values["report"])
    outcome = Outcome(name, alias, mode, gates_required=gates_required(values["require-gates"], alias, mode))
    try:
        execute(MlflowClient(), values, source, outcome)
    except Refused as refusal:
        outcome.status, outcome.message, outcome.refusal_title = "refused", refusal.message, refusal.title
    except MlflowException as exc:
        raise tracking.mlflow_error(exc, "MLflow request failed") from None
    report = build_report(outcome, tracking.redact(uri))
    report_path = write_json(values["report"], report)
    if outcome.status == "refused":
        github.set_outputs({"version": outcome.version or "", "report": report_path})
        github.write_summary(render_summary(report))
        github.error(outcome.message + f" Nothing was promoted; see {report_path}.", title=f"{NAME}: {outcome.refusal_title}")
        return CHECK_FAILED
    github.set_outputs(
        {
            "version": outcome.version or "",
            "alias": alias,
            "previous-version": outcome.from_version or "",
            "model-uri": f"models:/{name}@{alias}",
            "report": report_path,
        }
    )
    github.write_summary(render_summary(report))
    return PASSED


def execute(client: Any, values: dict[str, Any], source: Source | None, outcome: Outcome) -> None:
    from mlcicd import tracking

    name, alias, mode = outcome.model, outcome.alias, outcome.mode
    expected = values["expected-current-version"]
    resolved = None
    if source is not None and source.registers:
        resolved = resolve_registration(client, source)
        if not model_exists(client, name):
            if expected not in ("", "none"):  # refuse before creating anything
                raise Refused(
                    "alias moved",
                    f"`{name}@{alias}` is not set (the model is not registered yet), but `expected-current-version` is {expected}.",
                )
            ensure_model(client, name)
    else:
        get_model(client, name)
    with tracking.registry_lock(name):
        model = client.get_registered_model(name)
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        history = read_history(dict(model.tags or {}))
        outcome.aliases_before = outcome.aliases_after = aliases
        outcome.history = history
        current = aliases.get(alias)
        outcome.from_version = current
        if expected and (current or "none") != expected:
            where = f"points at version {current}" if current else "is not set"
            raise Refused(
                "alias moved",
                f"`{name}@{alias}` {where}, but `expected-current-version` is {expected}: another job moved it. "
                "Check the history (`mlcicd history`) and rerun with the current version if this promotion still applies.",
            )
        if mode == "rollback":
            plan = plan_rollback(aliases, history)
            if isinstance(plan, str):
                raise Refused(
                    "nothing to roll back to",
                    f"`{name}` cannot roll back: {plan}. Promote a known-good version to `{PRODUCTION}` with `version` instead.",
                )
            outcome.version = plan.to_version
            outcome.tags = dict(get_version(client, name, plan.to_version).tags or {})
            if outcome.gates_required:
                _check_gates(name, alias, plan.to_version, outcome.tags)
        else:
            assert source is not None
            version, registration = _target(client, name, source, resolved)
            outcome.version = str(version.version)
            wanted = dict(resolved.tags) if resolved is not None else {}  # lineage, also onto a reused version that lacks it
            if values["gates-passed"] is not None:
                wanted[tracking.TAG_GATES_PASSED] = "true" if values["gates-passed"] else "false"
            outcome.tags = set_tags(client, name, version, wanted)
            outcome.registration = {
                "status": registration,
                "version": str(version.version),
                "source": version.source,
                "run_id": version.run_id or None,
                "model_id": getattr(version, "model_id", None),
            }
            if outcome.gates_required:
                _check_gates(name, alias, outcome.version, outcome.tags)
            plan = plan_promote(aliases, alias, outcome.version)
            if plan is None:
                outcome.status = "unchanged"
                outcome.message = f"`{name}@{alias}` already points at version {outcome.version}; nothing to do."
                return
        apply(client, name, plan)
        now = datetime.now(timezone.utc)
        event = make_event(alias, mode, plan.from_version, plan.to_version, values["reason"], tracking.git_context(), now)
        key = next_event_key([k for k in model.tags if k.startswith(HISTORY_PREFIX)], now, secrets.token_hex(2))
        client.set_registered_model_tag(name, key, json.dumps(event, separators=(",", ":")))
        after = client.get_registered_model(name)
        outcome.aliases_after = {a: str(v) for a, v in (after.aliases or {}).items()}
        outcome.history = read_history(dict(after.tags or {}))
        outcome.event = {"id": key[len(HISTORY_PREFIX) :], **event}
        outcome.status = "rolled-back" if mode == "rollback" else "promoted"
        arrow = f"{plan.from_version or '(none)'} → {plan.to_version}"
        outcome.message = f"`{name}@{alias}`: {arrow}."


def _target(client: Any, name: str, source: Source, resolved: Resolved | None) -> tuple[Any, str]:
    if resolved is not None:
        version, status = find_or_register(client, name, resolved)
        return version, status
    if source.kind == "alias":
        return get_by_alias(client, name, source.alias), "existing"
    return get_version(client, name, source.version), "existing"


def _check_gates(name: str, alias: str, version: str, tags: dict[str, str]) -> None:
    from mlcicd import tracking

    value = tags.get(tracking.TAG_GATES_PASSED)
    if value == "true":
        return
    state = f"`{tracking.TAG_GATES_PASSED}` is `{value}`" if value is not None else f"it has no `{tracking.TAG_GATES_PASSED}` tag"
    raise Refused(
        "gates not passed",
        f"version {version} of `{name}` has not passed the quality gates ({state}), and `{alias}` requires them. "
        f"Run check-gates on version {version}, or pass `gates-passed: true` if the gates ran elsewhere, "
        "or `require-gates: false` to promote it anyway.",
    )


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


# --- reports --------------------------------------------------------------------------------


def build_report(outcome: Outcome, tracking_uri: str) -> dict[str, Any]:
    return {
        "stage": NAME,
        "version": __version__,
        "passed": outcome.status != "refused",
        "outcome": outcome.status,
        "message": outcome.message,
        "model": outcome.model,
        "alias": outcome.alias,
        "mode": outcome.mode,
        "model_uri": f"models:/{outcome.model}@{outcome.alias}",
        "tracking_uri": tracking_uri,
        "model_version": outcome.version,
        "previous_version": outcome.from_version,
        "registration": outcome.registration,
        "tags": outcome.tags,
        "gates": {"required": outcome.gates_required, "passed": outcome.tags.get("mlcicd.gates.passed")},
        "aliases": {"before": outcome.aliases_before, "after": outcome.aliases_after},
        "event": outcome.event,
        "history": outcome.history[-REPORT_EVENTS:],
    }


ICONS = {"promoted": "✅ promoted", "rolled-back": "↩️ rolled back", "unchanged": "✅ unchanged", "refused": "❌ refused"}


def render_summary(report: dict[str, Any]) -> str:
    model, alias = report["model"], report["alias"]
    lines = [f"## promote: {ICONS.get(report['outcome'], report['outcome'])} `{model}@{alias}`", "", report["message"], ""]
    before, after = report["aliases"]["before"], report["aliases"]["after"]
    tags = {k: v for k, v in report["tags"].items() if k.startswith("mlcicd.")}
    gates = report["gates"]
    gate = {"true": "✅ passed", "false": "❌ failed"}.get(gates["passed"] or "", "not recorded")
    registration = report["registration"]
    moved = report["event"] is not None
    rows = [
        ("model", f"`{model}`"),
        ("alias", f"`{alias}` ({report['mode']})"),
        ("from → to", _move(before.get(alias), after.get(alias), moved)),
    ]
    if report["model_version"]:
        rows.append(("version", report["model_version"]))
    if registration:
        rows.append(("registration", f"{registration['status']} from `{registration['source']}`"))
    if alias == PRODUCTION:
        rows.append((PREVIOUS, _move(before.get(PREVIOUS), after.get(PREVIOUS), moved)))
    if report["model_version"]:
        rows.append(("gates", gate + (" (required)" if gates["required"] else "")))
    rows += [(f"`{k}`", _short(v)) for k, v in sorted(tags.items()) if k != "mlcicd.gates.passed"]
    lines += [markdown_table(["", ""], rows), ""]
    history = report["history"][-SUMMARY_EVENTS:]
    if history:
        lines += [f"### Recent history (last {len(history)})", "", history_table(history), ""]
    return "\n".join(lines)


def _move(before: str | None, after: str | None, moved: bool) -> str:
    if not moved or before == after:
        return f"{before or '(none)'} (unchanged)"
    return f"{before or '(none)'} → {after or '(none)'}"


def _short(value: str) -> str:
    return value[:12] if re.fullmatch(r"[0-9a-f]{40}", value) else value


def history_table(events: list[dict[str, Any]]) -> str:
    rows = []
    for e in events:
        run = e.get("workflow_run") or ""
        rows.append(
            (
                (e.get("time") or e.get("id", ""))[:19].replace("T", " "),
                f"`{e.get('alias', '?')}`",
                e.get("mode", ""),
                f"{e.get('from') or '(none)'} → {e.get('to') or '(none)'}",
                e.get("actor", ""),
                (e.get("commit") or "")[:12],
                f"[run]({run})" if run else "",
                e.get("reason", ""),
            )
        )
    return markdown_table(["time (UTC)", "alias", "mode", "from → to", "actor", "commit", "workflow", "reason"], rows)


def run_history(values: dict[str, Any]) -> int:
    name = values["model-name"].strip()
    if not name:
        raise UsageError("missing model-name", "pass the registered model, e.g. `mlcicd history churn`.")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlcicd import tracking

    tracking.connect()
    try:
        model = get_model(MlflowClient(), name)
    except MlflowException as exc:
        raise tracking.mlflow_error(exc, "MLflow request failed") from None
    events = read_history(dict(model.tags or {}))
    if values["limit"]:
        events = events[-values["limit"] :]
    if values["format"] == "json":
        print(json.dumps(events, indent=2))
        return PASSED
    aliases = ", ".join(f"`{a}` → {v}" for a, v in sorted((model.aliases or {}).items())) or "none"
    body = history_table(events) if events else "No promotions recorded yet."
    markdown = f"## Promotion history of `{name}`\n\nAliases now: {aliases}\n\n{body}\n"
    print(markdown, flush=True)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        github.write_summary(markdown)
    return PASSED


STAGE = Stage(
    NAME,
    "register a model version in MLflow and move a registry alias (staging, production, rollback)",
    OPTIONS,
    run,
    outputs=(
        ("version", "the model version the alias points at now, e.g. `3`"),
        ("alias", "the alias moved, e.g. `production`"),
        ("previous-version", "the version the alias pointed at before (empty if none; the same version for a no-op)"),
        ("model-uri", "`models:/<name>@<alias>`, for the next job"),
        ("report", "path of the JSON report"),
    ),
)
HISTORY = Stage(
    "history",
    "show a model's promotion history (newest last)",
    HISTORY_OPTIONS,
    run_history,
    has_config_section=False,
    positional="model-name",
)

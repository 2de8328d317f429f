"""promote's registry I/O: register the model `model-uri` names (or find the version made from it),
copy its lineage tags, and hand the version to the shared alias move (mlcicd.promotion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcicd.errors import UsageError
from mlcicd.promotion import AliasMove, Refused, Target, move_alias, roll_back
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
)

from .decide import Source
from .settings import Settings


def carry_out(client: Any, settings: Settings, source: Source | None, move: AliasMove) -> None:
    """Register (before the lock: read-only, then the model if it is new) and move the alias. Fills `move`;
    raises Refused."""
    expected = settings.expected_current_version
    if source is None:
        roll_back(client, move, expected=expected, reason=settings.reason)
        return
    resolved = None
    if source.registers:
        resolved = resolve_registration(client, source)
        if not model_exists(client, move.model):
            if expected not in ("", "none"):  # refuse before creating anything
                raise Refused(
                    "alias moved",
                    f"`{move.model}@{move.alias}` is not set (the model is not registered yet), but "
                    f"`expected-current-version` is {expected}.",
                )
            ensure_model(client, move.model)
    else:
        get_model(client, move.model)
    move_alias(
        client,
        move,
        expected=expected,
        reason=settings.reason,
        target=target(source, resolved, settings.gates_passed),
    )


def target(source: Source, resolved: Resolved | None, gates_passed: bool | None) -> Target:
    """The version the alias moves to, chosen under the lock: registered (or reused), with the lineage tags
    and the gate result set on it."""
    from mlcicd import tracking

    def choose(client: Any, move: AliasMove) -> None:
        version, registration = _version_for(client, move.model, source, resolved)
        move.version = str(version.version)
        wanted = (
            dict(resolved.tags) if resolved is not None else {}
        )  # lineage, also onto a reused version that lacks it
        if gates_passed is not None:
            wanted[tracking.TAG_GATES_PASSED] = "true" if gates_passed else "false"
        move.tags = set_tags(client, move.model, version, wanted)
        move.registration = {
            "status": registration,
            "version": str(version.version),
            "source": version.source,
            "run_id": version.run_id or None,
            "model_id": getattr(version, "model_id", None),
        }

    return choose


def _version_for(client: Any, name: str, source: Source, resolved: Resolved | None) -> tuple[Any, str]:
    if resolved is not None:
        version, status = find_or_register(client, name, resolved)
        return version, status
    if source.kind == "alias":
        return get_by_alias(client, name, source.alias), "existing"
    return get_version(client, name, source.version), "existing"


def ensure_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    if model_exists(client, name):
        return
    try:
        client.create_registered_model(name, description="Registered by ml-cicd promote.")
    except MlflowException as exc:
        if getattr(exc, "error_code", "") not in (
            "RESOURCE_ALREADY_EXISTS",
            "ALREADY_EXISTS",
        ):  # created meanwhile by a concurrent job
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
            raise UsageError(
                "unknown logged model",
                f"no logged model `{source.model_id}` in {store()}; check `model-uri`.",
            ) from None
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
                    f"run `{run_id}` has no model `{source.path}` (no logged model of that name, no "
                    f"`{source.path}/MLmodel` artifact). "
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
            experiment_ids=[run.info.experiment_id],
            filter_string=f"name = {search_literal(path)}",
            page_token=token,
        )
        models += [m for m in page if m.source_run_id == run.info.run_id]
        token = page.token
        if not token:
            break
    if not models:
        return None
    if (
        len(models) > 1 and run.outputs is not None
    ):  # the same name logged at several steps: the last, as MLflow does
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
        return str(run.info.artifact_uri).rstrip("/") + "/" + path
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
    for tags in (
        dict(logged.tags or {}) if logged is not None else {},
        dict(run.data.tags) if run is not None else {},
    ):
        found.update({k: str(v) for k, v in tags.items() if k in wanted and str(v)})
    if (
        tracking.TAG_GIT_SHA not in found
        and run is not None
        and run.data.tags.get("mlflow.source.git.commit")
    ):
        found[tracking.TAG_GIT_SHA] = run.data.tags["mlflow.source.git.commit"]
    if run_id:
        found[tracking.TAG_RUN_ID] = run_id
    return found


def find_or_register(client: Any, name: str, resolved: Resolved) -> tuple[Any, str]:
    """The version of `name` made from the same logged model or source, else a new one. Under the lock."""
    clause = (
        f"run_id = {search_literal(resolved.run_id)}"
        if resolved.run_id
        else f"source_path = {search_literal(resolved.source)}"
    )
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
        name,
        resolved.source,
        run_id=resolved.run_id,
        tags=resolved.tags,
        model_id=resolved.model_id,
        await_creation_for=60,
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

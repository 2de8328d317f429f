"""Pull-request jobs cannot write the registry.

A pull request's code runs on the runner (train.py, the model it builds). On such a job the toolkit
works read-only:

- every registry write of MLflow's client (versions, aliases, version and model tags) raises a
  UsageError, whatever the store: the toolkit itself never moves `@production` from a pull request;
- with the embedded store, the job works on a throwaway copy of it (`$MLCICD_HOME/pull-requests/`,
  one per workflow run, shared by the run's jobs on the runner), and MLFLOW_TRACKING_URI, which the
  training command inherits, names that copy: the pull request's run, its model and anything its
  code writes through MLflow land in the copy, never in `mlflow.db`, which holds `@production`.

Read-only is on for `pull_request` and `pull_request_target` events, and wherever
MLCICD_READ_ONLY=true (train.yml sets it on a pull request's jobs); MLCICD_READ_ONLY=false does not
turn it off for a pull-request event.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlcicd.errors import UsageError

ENV = "MLCICD_READ_ONLY"
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})
SANDBOX_DIR = "pull-requests"
KEEP_SECONDS = 3 * 24 * 3600.0
"""Throwaway copies older than this are removed when a new one is made."""
REGISTRY_WRITES = (
    "create_registered_model",
    "rename_registered_model",
    "update_registered_model",
    "delete_registered_model",
    "set_registered_model_tag",
    "delete_registered_model_tag",
    "create_model_version",
    "update_model_version",
    "delete_model_version",
    "transition_model_version_stage",
    "set_model_version_tag",
    "delete_model_version_tag",
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "copy_model_version",
)
"""MlflowClient's methods that change the model registry (MLflow 3)."""


def active(environ: Mapping[str, str] | None = None) -> bool:
    """Read-only: a pull-request event, or MLCICD_READ_ONLY=true."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_EVENT_NAME", "") in PULL_REQUEST_EVENTS:
        return True
    return env.get(ENV, "").strip().lower() in ("1", "true", "yes")


def sandbox_key(environ: Mapping[str, str] | None = None) -> str:
    """One throwaway store per workflow run (and attempt): its jobs hand the model over through it."""
    env = os.environ if environ is None else environ
    run = "".join(c for c in env.get("GITHUB_RUN_ID", "") if c.isalnum()) or "local"
    attempt = "".join(c for c in env.get("GITHUB_RUN_ATTEMPT", "") if c.isalnum()) or "1"
    return f"run-{run}-{attempt}"


def sandbox_db(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    return home / SANDBOX_DIR / sandbox_key(environ) / "mlflow.db"


def make_sandbox(source: Path, target: Path, now: float | None = None) -> Path:
    """A consistent copy of the embedded store at `target` (sqlite's online backup, so a writer in
    another job is no problem), made once; older copies are removed. The caller holds a lock."""
    if target.exists():
        return target
    root = target.parent.parent
    now = time.time() if now is None else now
    if root.is_dir():
        for old in root.iterdir():
            if old != target.parent and old.is_dir() and now - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with sqlite3.connect(partial) as copy:
        if source.exists():
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as original:
                original.backup(copy)
    copy.close()
    partial.replace(target)
    return target


def refuse(method: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise UsageError(
            "registry is read-only in a pull request",
            f"a pull request's job cannot change the model registry (MlflowClient.{method}): its code is not "
            "reviewed yet. Register and promote from the push to the default branch, or a manual run, after "
            "merge.",
        )

    return refused


@functools.cache
def guard_registry() -> None:
    """Make MlflowClient's registry writes raise in this process (idempotent)."""
    from mlflow import MlflowClient

    for method in REGISTRY_WRITES:
        if hasattr(MlflowClient, method):
            setattr(MlflowClient, method, refuse(method))

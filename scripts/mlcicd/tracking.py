"""MLflow connection shared by the stages: embedded SQLite by default, a tracking server when
MLFLOW_TRACKING_URI is set; credentials masked; the registry lock; git/workflow context tags."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlcicd import github, readonly
from mlcicd.errors import UsageError

TAG = "mlcicd."
TAG_FINGERPRINT = "mlcicd.fingerprint"
TAG_RUN_ID = "mlcicd.run_id"
TAG_GIT_SHA = "mlcicd.git_sha"
TAG_GIT_REF = "mlcicd.git_ref"
TAG_WORKFLOW_RUN = "mlcicd.workflow_run"
TAG_DATA_DIGEST = "mlcicd.data_digest"
TAG_GATES_PASSED = "mlcicd.gates.passed"
TAG_MODEL_NAME = "mlcicd.model_name"
"""On a training run: the registered model train-gpu trains it for (check-gates' default `model-name`)."""
TAG_LOCK = "mlcicd.lock"
TAG_CANARY_STATE = "mlcicd.canary.state"
TAG_CANARY_WEIGHT = "mlcicd.canary.weight"
TAG_CANARY_UPDATED = "mlcicd.canary.updated"
PROFILE_ARTIFACT = "mlcicd/reference-profile.json"
"""The training data's reference profile, stored with each trained version for monitor's drift check."""
SECRET_ENV = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "DATABRICKS_TOKEN",
)


def registered_model_name(value: Any) -> str:
    """An option parser: a registered model name as MLflow's own registry rules accept it, checked before
    anything runs (not after hours of training). Empty stays empty (the stage says when it needs one)."""
    if isinstance(value, (dict, list)):
        raise ValueError("expected a single value, not a list or mapping")
    name = "" if value is None else str(value).strip()
    if not name:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(
            f"{name!r} contains a control character (newline, tab …); MLflow model URIs cannot carry it"
        )
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name

    try:
        _validate_model_name(name)
    except MlflowException as exc:
        raise ValueError(f"MLflow refuses it: {exc.message}") from None
    return name


def mlcicd_home() -> Path:
    """Fixed per-runner state (embedded registry, artifacts, locks): never inside a job's workspace,
    which differs between the jobs of one workflow."""
    return Path(os.environ.get("MLCICD_HOME") or Path.home() / ".mlcicd").expanduser()


def redact(uri: str) -> str:
    """The URI without user:password@ or query string, safe for messages."""
    parts = urlsplit(uri)
    if not parts.netloc:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def mask_credentials() -> None:
    for name in SECRET_ENV:
        if value := os.environ.get(name):
            github.add_mask(value)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    password = urlsplit(uri).password if "://" in uri else None
    if password:
        github.add_mask(password)


def embedded_uri() -> str:
    """The embedded store; in a pull request's job (read-only), the run's throwaway copy of it."""
    if readonly.active():
        return f"sqlite:///{readonly.sandbox_db(mlcicd_home())}"
    return f"sqlite:///{mlcicd_home() / 'mlflow.db'}"


def is_embedded() -> bool:
    """No tracking server configured: unset, or the embedded store that connect() exported."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return not uri or uri == embedded_uri()


def connect() -> str:
    """Point MLflow (and any child process, through the environment) at the tracking store; returns the URI.

    Raises UsageError with the redacted URI when a server does not answer.
    """
    import mlflow

    mask_credentials()
    if readonly.active():
        readonly.guard_registry()
    # MLflow retries transient HTTP errors itself (429/5xx, with exponential backoff); its
    # defaults wait minutes, too long for a CI step that should fail and say why.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if is_embedded():
        if os.environ.get("RUNNER_ENVIRONMENT") == "github-hosted":
            from mlcicd import github

            # Each job of a GitHub-hosted run gets a fresh machine: what one job registers here, the next
            # cannot see.
            github.warning(
                f"no MLFLOW_TRACKING_URI: using the embedded registry in {mlcicd_home()}, which disappears "
                "with this GitHub-hosted "
                "machine at the end of the job. Set the MLFLOW_TRACKING_URI secret to a tracking server, or "
                "run the jobs on one "
                'self-hosted runner (e.g. `cpu-runner: \'["self-hosted", "gpu"]\'`).',
                title="embedded registry on a GitHub-hosted runner",
            )
        home = mlcicd_home()
        home.mkdir(parents=True, exist_ok=True)
        uri = embedded_uri()
        if (
            readonly.active()
        ):  # a pull request works on a throwaway copy: mlflow.db is never opened for writing
            with file_lock(home / "schema.lock"):
                readonly.make_sandbox(home / "mlflow.db", readonly.sandbox_db(home))
        os.environ["MLFLOW_TRACKING_URI"] = uri  # the training command inherits it
        with file_lock(home / "schema.lock"):  # two jobs creating the tables at once would collide
            mlflow.set_tracking_uri(uri)
            mlflow.MlflowClient().search_experiments(max_results=1)
        return uri
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def check_server(uri: str, attempts: int = 4) -> None:
    import requests

    last = ""
    for attempt in range(attempts):
        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=10)
            if response.status_code < 500:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        if attempt + 1 < attempts:
            time.sleep(min(2**attempt, 8))
    raise UsageError(
        "MLflow server unreachable",
        f"{redact(uri)} did not answer ({last}) after {attempts} attempts. Check MLFLOW_TRACKING_URI and "
        "that the server is up "
        "(or unset MLFLOW_TRACKING_URI to use the embedded registry on this runner).",
    )


def experiment_id(name: str) -> str:
    """The experiment's id, created on first use (artifacts under MLCICD_HOME when embedded)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise UsageError(
                "experiment deleted",
                f"experiment `{name}` is deleted in {redact(os.environ['MLFLOW_TRACKING_URI'])}; restore it "
                "or choose another `experiment`.",
            )
        return found.experiment_id
    location = (mlcicd_home() / "artifacts" / name).as_uri() if is_embedded() else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a concurrent job
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


LEASE_SECONDS = 60.0
"""A tracking-server lease lives this long unless renewed: a holder on a machine that vanished
blocks others for a minute, not for the whole wait."""


def _this_host() -> str:
    boot = Path("/proc/sys/kernel/random/boot_id")
    boot_id = boot.read_text().strip()[:8] if boot.is_file() else ""
    return f"{socket.gethostname()}/{boot_id}"


def lease_abandoned(holder: dict[str, Any] | None, now: float) -> bool:
    """Free to take: no lease, an expired one, or one whose holder process on this very machine is gone
    (a promote killed with its server: the rerun must not wait for the lease to run out)."""
    if holder is None or holder.get("expires", 0) < now:
        return True
    pid = holder.get("pid")
    if holder.get("host") != _this_host() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


@contextlib.contextmanager
def registry_lock(model_name: str, timeout: float = 300.0) -> Iterator[None]:
    """Serialise registry changes of one model.

    Embedded store: an flock next to the database (exact). Tracking server: MLflow has no
    compare-and-set, so a lease tag on the registered model is written, then read back after a
    pause; whoever's token survives owns the lease. The lease is short and renewed while held, and
    names its host and pid, so a dead holder does not block a rerun. Workflows also use a
    `concurrency:` group per model; this is the second line of defence.
    """
    if is_embedded():
        with file_lock(mlcicd_home() / "locks" / f"{model_name}.lock"):
            yield
        return
    from mlflow import MlflowClient

    client = MlflowClient()
    token = uuid.uuid4().hex

    def lease() -> str:
        return json.dumps(
            {"token": token, "expires": time.time() + LEASE_SECONDS, "host": _this_host(), "pid": os.getpid()}
        )

    deadline = time.monotonic() + timeout
    while True:
        current = client.get_registered_model(model_name).tags.get(TAG_LOCK)
        holder = json.loads(current) if current else None
        if lease_abandoned(holder, time.time()):
            client.set_registered_model_tag(model_name, TAG_LOCK, lease())
            time.sleep(1.0)
            now = client.get_registered_model(model_name).tags.get(TAG_LOCK)
            if now and json.loads(now).get("token") == token:
                break
        if time.monotonic() > deadline:
            raise UsageError(
                "registry busy",
                f"another job holds the lock on `{model_name}` for more than {timeout:.0f}s; rerun when it "
                "has finished.",
            )
        time.sleep(2.0)
    released = threading.Event()

    def renew() -> None:
        while not released.wait(LEASE_SECONDS / 3):
            with contextlib.suppress(Exception):  # a server that is down: the holder's own calls fail loudly
                client.set_registered_model_tag(model_name, TAG_LOCK, lease())

    renewer = threading.Thread(target=renew, daemon=True)
    renewer.start()
    try:
        yield
    finally:
        released.set()
        renewer.join(5)
        with contextlib.suppress(Exception):
            client.delete_registered_model_tag(model_name, TAG_LOCK)


def git_context() -> dict[str, str]:
    """Commit, ref, workflow run URL and actor of this run (from Actions, else from git)."""
    sha = os.environ.get("GITHUB_SHA", "")
    if not sha:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            sha = subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
    run_url = ""
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        run_url = f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    try:
        actor = os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        actor = "unknown"
    return {"sha": sha, "ref": os.environ.get("GITHUB_REF", ""), "run_url": run_url, "actor": actor}


def mlflow_error(exc: Exception, what: str) -> UsageError:
    """An MLflow exception as one clear message (the URI redacted, never a secret)."""
    message = getattr(exc, "message", None) or str(exc)
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return UsageError(what, f"{first} (tracking store: {redact(os.environ.get('MLFLOW_TRACKING_URI', ''))}).")


def version_tags(version: Any) -> dict[str, str]:
    return dict(version.tags or {})

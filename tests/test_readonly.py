"""A pull request's jobs cannot write the registry, even with the embedded store: the toolkit's own
registry writes fail, and the store they see (and a training command inherits) is a throwaway copy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlcicd import readonly

PR_ENV = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_RUN_ID": "4711", "GITHUB_RUN_ATTEMPT": "1"}


def test_read_only_is_on_for_pull_request_events_and_on_request():
    assert readonly.active({"GITHUB_EVENT_NAME": "pull_request"})
    assert readonly.active(
        {"GITHUB_EVENT_NAME": "pull_request_target", readonly.ENV: "false"}
    )  # cannot be turned off
    assert readonly.active({"GITHUB_EVENT_NAME": "push", readonly.ENV: "true"})
    assert not readonly.active({"GITHUB_EVENT_NAME": "push", readonly.ENV: "false"}) and not readonly.active(
        {}
    )
    assert readonly.sandbox_key({"GITHUB_RUN_ID": "12/../x", "GITHUB_RUN_ATTEMPT": "2"}) == "run-12x-2"


def registry_with_production(home: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(home / "artifacts").as_uri())
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "stand-in", "model/MLmodel")
    client.create_registered_model("churn")
    client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("churn", "production", "1")


def state(db: Path) -> tuple[dict[str, str], list[str]]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    model = client.get_registered_model("churn")
    versions = sorted(str(v.version) for v in client.search_model_versions("name='churn'"))
    return {a: str(v) for a, v in model.aliases.items()}, versions


PULL_REQUEST_CODE = """
import mlflow
client = mlflow.MlflowClient()  # MLFLOW_TRACKING_URI as train-gpu hands it to the training command
run = client.create_run(client.get_experiment_by_name("e").experiment_id)
client.log_text(run.info.run_id, "evil", "model/MLmodel")
client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
client.set_registered_model_alias("churn", "production", "2")
print("WROTE", client.get_model_version_by_alias("churn", "production").version)
"""


def test_a_pull_requests_code_and_the_toolkit_cannot_write_the_embedded_registry(tmp_path, run_cli):
    home = tmp_path / "home"
    registry_with_production(home)
    before = (home / "mlflow.db").read_bytes()
    script = textwrap.dedent(f"""
        import os, subprocess, sys
        from mlcicd import tracking
        print("URI", tracking.connect())
        code = subprocess.run([sys.executable, "-c", {PULL_REQUEST_CODE!r}]).returncode  # the training command
        from mlflow import MlflowClient
        print("PRODUCTION", MlflowClient().get_model_version_by_alias("churn", "production").version)
        try:
            MlflowClient().set_registered_model_alias("churn", "production", "1")
        except Exception as exc:
            print("REFUSED", type(exc).__name__, exc)
        sys.exit(code)
    """)
    env = {"MLCICD_HOME": str(home), "PATH": str(Path(sys.executable).parent), **PR_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sandbox = home / "pull-requests" / "run-4711-1" / "mlflow.db"
    assert f"URI sqlite:///{sandbox}" in proc.stdout
    assert "WROTE 2" in proc.stdout  # the code ran against what it took for the registry: the copy
    assert (
        "PRODUCTION 2" in proc.stdout
    )  # the toolkit reads the same copy: whatever the code did stays in its run
    assert "REFUSED UsageError registry is read-only in a pull request" in proc.stdout
    assert (home / "mlflow.db").read_bytes() == before
    assert state(home / "mlflow.db") == ({"production": "1"}, ["1"])
    assert state(sandbox) == ({"production": "2"}, ["1", "2"])

    # promote, as a job of the pull request would run it: exit 2, one annotation, nothing changed.
    result = run_cli(
        "promote",
        "--model-name",
        "churn",
        "--version",
        "1",
        "--alias",
        "staging",
        env={"MLCICD_HOME": str(home), **PR_ENV},
    )
    assert result.rc == 2, result.log
    assert (
        result.stdout.count("::error") == 1 and "registry is read-only in a pull request" in result.stdout
    ), result.log
    assert state(home / "mlflow.db") == ({"production": "1"}, ["1"])


def test_the_throwaway_copy_is_made_once_per_run_and_old_ones_go(tmp_path):
    import os
    import time

    home = tmp_path
    registry_with_production(home)
    old = home / "pull-requests" / "run-1-1"
    old.mkdir(parents=True)
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old, (week_ago, week_ago))
    target = readonly.sandbox_db(home, PR_ENV)
    assert readonly.make_sandbox(home / "mlflow.db", target) == target and not old.exists()
    assert state(target) == ({"production": "1"}, ["1"])
    target.write_bytes(b"the run's own state")
    assert (
        readonly.make_sandbox(home / "mlflow.db", target).read_bytes() == b"the run's own state"
    )  # later jobs share it


@pytest.mark.parametrize(
    "method", ["set_registered_model_alias", "create_model_version", "set_model_version_tag"]
)
def test_every_registry_write_is_refused(method):
    from mlcicd.errors import UsageError

    with pytest.raises(UsageError, match=method):
        readonly.refuse(method)("churn", "production", "1")

"""train-gpu through the real CLI: real MLflow (embedded SQLite and a real server), real torch on CPU, real torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_clear_error

TINY = ROOT / "tests" / "fixtures" / "train_tiny.py"
CPU = ("--require-gpu", "false")


def has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.fixture
def project(tmp_path):
    """A consumer checkout: the training script and a params file."""
    shutil.copy(TINY, tmp_path / "train_tiny.py")
    (tmp_path / "params.yaml").write_text("optimizer:\n  lr: 0.05\n  name: sgd\nepochs: 20\n")
    return tmp_path


def train(run_cli, project, mode, *args, env=None, model="tiny"):
    command = f"{sys.executable} train_tiny.py {mode}"
    return run_cli(
        "train-gpu", "--command", command, "--model-name", model, *CPU, *args, env=env, cwd=project
    )


def client():
    from mlflow import MlflowClient

    return MlflowClient()


def use_store(env: dict[str, str]):
    import mlflow

    mlflow.set_tracking_uri(
        env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(os.environ['MLCICD_HOME']) / 'mlflow.db'}"
    )


def test_handoff_model_is_logged_with_everything_recorded(run_cli, project, embedded_home):
    result = train(
        run_cli, project, "handoff", "--params", "params.yaml", "--fingerprint-paths", "*.py", "--data-digest", "sha256:abc",
        env={"GITHUB_SHA": "0123456789abcdef", "GITHUB_REF": "refs/heads/main", "GITHUB_REPOSITORY": "acme/churn", "GITHUB_RUN_ID": "42"},
    )  # fmt: skip
    assert result.rc == 0, result.log
    out = result.outputs
    assert out["skipped"] == "false" and out["device"] == "cpu" and out["model-uri"].startswith("models:/m-")
    assert out["fingerprint"].startswith("sha256:")
    assert "::warning title=train-gpu%3A training on CPU::" in result.stdout  # said loudly
    assert (
        "mode=handoff run=" + out["run-id"] in result.stdout
    )  # the command ran inside our run, output streamed
    assert "::group::train-gpu: " in result.stdout and "::endgroup::" in result.stdout

    use_store({})
    run = client().get_run(out["run-id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "ci-0123456"
    tags = run.data.tags
    assert tags["mlcicd.git_sha"] == "0123456789abcdef" and tags["mlcicd.git_ref"] == "refs/heads/main"
    assert tags["mlcicd.workflow_run"] == "https://github.com/acme/churn/actions/runs/42"
    assert tags["mlcicd.data_digest"] == "sha256:abc" and tags["mlcicd.fingerprint"] == out["fingerprint"]
    assert tags["mlcicd.device"] == "cpu" and tags["mlcicd.exit_code"] == "0"
    assert run.data.params["optimizer.lr"] == "0.05" and run.data.params["epochs"] == "20"
    assert "mlcicd.wall_time_s" in run.data.metrics
    artifacts = {a.path for a in client().list_artifacts(out["run-id"], "mlcicd")}
    assert {"mlcicd/environment.json", "mlcicd/requirements-frozen.txt", "mlcicd/params.yaml"} <= artifacts
    environment = json.loads(
        Path(client().download_artifacts(out["run-id"], "mlcicd/environment.json")).read_text()
    )
    assert (
        environment["torch"]
        and environment["gpu"]["count"] == 0
        and environment["fingerprint_files"] == ["params.yaml", "train_tiny.py"]
    )
    assert str(embedded_home) in result.outputs.get("report", "") or (project / out["report"]).is_file()

    import mlflow
    import numpy as np

    model = mlflow.pyfunc.load_model(out["model-uri"])
    assert model.predict(np.ones((2, 3), dtype=np.float32)).shape == (2, 1)


def test_model_logged_by_the_script_against_a_real_server(run_cli, project, mlflow_server):
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_TRACKING_TOKEN": "planted-secret-123"}
    result = train(run_cli, project, "log", "--params", "params.yaml", "--experiment", "tiny-server", env=env)
    assert result.rc == 0, result.log
    use_store(env)
    run = client().get_run(result.outputs["run-id"])
    assert (
        run.data.params["lr"] == "0.05" and "loss" in run.data.metrics
    )  # the script's own logging, same run
    assert result.outputs["model-uri"].startswith("models:/m-")
    logged = client().get_logged_model(result.outputs["model-uri"].removeprefix("models:/"))
    assert logged.source_run_id == result.outputs["run-id"]
    # the token is masked before anything else is printed, and appears nowhere else
    masks = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::")]
    assert masks == ["::add-mask::planted-secret-123"]
    assert result.log.count("planted-secret-123") == 1
    assert "planted-secret-123" not in (project / result.outputs["report"]).read_text()
    assert "planted-secret-123" not in json.dumps(run.data.params) + json.dumps(run.data.tags)


def test_torchscript_with_signature_data(run_cli, project, embedded_home):
    import pandas as pd

    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0], "label": [0, 1]}).to_parquet(
        project / "sample.parquet"
    )
    result = train(run_cli, project, "jit", "--signature-data", "sample.parquet", "--target", "label")
    assert result.rc == 0, result.log
    import mlflow

    use_store({})
    info = mlflow.models.get_model_info(result.outputs["model-uri"])
    assert info.signature is not None and len(info.signature.inputs.inputs) >= 1


def test_torchrun_two_gloo_processes(run_cli, project, embedded_home):
    result = train(run_cli, project, "ddp", "--nproc-per-node", "2")
    assert result.rc == 0, result.log
    assert "rank 0/2 all_reduce=2.0" in result.stdout and "rank 1/2 all_reduce=2.0" in result.stdout
    assert "torch.distributed.run --standalone --nproc-per-node=2" in result.stdout
    assert result.outputs["model-uri"].startswith("models:/m-")


def test_same_fingerprint_skips_then_retrain_forces(run_cli, project, embedded_home):
    first = train(run_cli, project, "handoff", "--fingerprint-paths", "train_tiny.py", model="skipper")
    assert first.rc == 0, first.log
    use_store({})
    c = client()
    c.create_registered_model("skipper")
    version = c.create_model_version(
        "skipper",
        first.outputs["model-uri"],
        run_id=first.outputs["run-id"],
        tags={"mlcicd.fingerprint": first.outputs["fingerprint"]},
    )

    second = train(run_cli, project, "handoff", "--fingerprint-paths", "train_tiny.py", model="skipper")
    assert second.rc == 0, second.log
    assert second.outputs["skipped"] == "true"
    assert (
        second.outputs["model-uri"] == f"models:/skipper/{version.version}"
        and second.outputs["run-id"] == first.outputs["run-id"]
    )
    assert "mode=handoff" not in second.stdout  # nothing ran

    forced = train(
        run_cli,
        project,
        "handoff",
        "--fingerprint-paths",
        "train_tiny.py",
        "--retrain",
        "true",
        model="skipper",
    )
    assert forced.outputs["skipped"] == "false" and forced.outputs["run-id"] != first.outputs["run-id"]

    (project / "train_tiny.py").write_text((project / "train_tiny.py").read_text() + "\n# changed\n")
    changed = train(run_cli, project, "handoff", "--fingerprint-paths", "train_tiny.py", model="skipper")
    assert (
        changed.outputs["skipped"] == "false"
        and changed.outputs["fingerprint"] != first.outputs["fingerprint"]
    )


def test_failing_command_marks_the_run_failed_and_shows_the_tail(run_cli, project, embedded_home):
    result = train(run_cli, project, "fail")
    assert result.rc == 1, result.log
    assert len(result.errors) == 1 and "exited with 3" in result.errors[0]
    assert "something went wrong in training" in result.summary and "last " in result.summary
    use_store({})
    assert client().get_run(result.outputs["run-id"]).info.status == "FAILED"


def test_timeout_kills_the_process_tree(run_cli, project, embedded_home):
    marker = f"sleep-{os.getpid()}-{time.time_ns()}"
    (project / f"{marker}.py").write_text((project / "train_tiny.py").read_text())
    started = time.monotonic()
    result = run_cli(
        "train-gpu",
        "--command",
        f"{sys.executable} {marker}.py sleep",
        "--model-name",
        "tiny",
        *CPU,
        "--timeout-minutes",
        "0.15",
        cwd=project,
    )
    assert result.rc == 1 and time.monotonic() - started < 120, result.log
    assert "timed out after 0.15 min" in result.errors[0]
    assert (
        subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    )  # nothing left running
    use_store({})
    assert client().get_run(result.outputs["run-id"]).info.status == "FAILED"


def test_leftover_background_process_is_killed_when_the_command_exits(run_cli, project, embedded_home):
    marker = f"orphan-{os.getpid()}-{time.time_ns()}"
    started = time.monotonic()
    result = train(run_cli, project, "orphan", env={"MLCICD_TEST_MARKER": marker})
    assert result.rc == 0, result.log
    assert time.monotonic() - started < 90  # did not wait for the 300 s sleeper
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1


def test_timeout_kills_torchrun_workers_that_ignore_sigterm(run_cli, project, embedded_home):
    marker = f"ddpsleep-{os.getpid()}-{time.time_ns()}"
    (project / f"{marker}.py").write_text((project / "train_tiny.py").read_text())
    command = f"{sys.executable} {marker}.py ddpsleep"
    started = time.monotonic()
    result = run_cli(
        "train-gpu",
        "--command",
        command,
        "--model-name",
        "tiny",
        *CPU,
        "--nproc-per-node",
        "2",
        "--timeout-minutes",
        "0.3",
        cwd=project,
    )
    assert result.rc == 1, result.log
    assert "rank 1 hanging" in result.stdout and "timed out" in result.errors[0]
    assert time.monotonic() - started < 120
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1


def test_cancelled_job_kills_the_training(project, embedded_home):
    marker = f"cancel-{os.getpid()}-{time.time_ns()}"
    (project / f"{marker}.py").write_text((project / "train_tiny.py").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcicd", "train-gpu", "--command", f"{sys.executable} {marker}.py sleep", "--model-name", "tiny", *CPU],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for line in proc.stdout:
        if "sleeping" in line:
            break
    proc.send_signal(signal.SIGTERM)  # what the runner sends when a job is cancelled
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, rest
    assert "cancelled; the process tree was killed" in rest
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    run_id = rest.split("run=")[1].split()[0] if "run=" in rest else None
    use_store({})
    runs = client().search_runs(
        client().get_experiment_by_name("tiny").experiment_id, order_by=["start_time DESC"], max_results=1
    )
    assert runs[0].info.status == "KILLED" and (run_id is None or runs[0].info.run_id == run_id)


def test_no_model_explains_both_options(run_cli, project, embedded_home):
    result = train(run_cli, project, "none")
    assert result.rc == 1
    assert len(result.errors) == 1
    assert "log_model" in result.errors[0] and "$MLCICD_MODEL_DIR/model.pt" in result.errors[0]


@pytest.mark.skipif(has_gpu(), reason="this runner has a GPU")
def test_require_gpu_without_gpu_names_the_runner_labels(run_cli, project, embedded_home):
    result = run_cli(
        "train-gpu",
        "--command",
        f"{sys.executable} train_tiny.py handoff",
        "--model-name",
        "tiny",
        cwd=project,
    )
    assert_one_clear_error(result, "no GPU", "runs-on", "require-gpu: false")
    assert not (embedded_home / "mlflow.db").exists()  # failed before touching the registry


@pytest.fixture(scope="module")
def not_mlflow():
    """An HTTP server that answers /health but is not MLflow (404 for everything else)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK" if self.path == "/health" else b"<html>not here</html>")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (["--fingerprint-paths", "src/**/*.py"], {}, ["src/**/*.py", "matches no file"]),
        (["--nproc-per-node", "two"], {}, ["nproc-per-node", "'two'"]),
        (["--params", "missing.yaml"], {}, ["missing.yaml"]),
        (["--timeout-minutes", "-5"], {}, ["timeout-minutes", "greater than 0"]),
        (["--command", "no-such-binary --x"], {}, ["no-such-binary", "not on PATH"]),
        (["--command", "python 'unclosed"], {}, ["command", "quote"]),
        (["--working-directory", "nope"], {}, ["nope", "not a directory"]),
        (
            [],
            {"MLFLOW_TRACKING_URI": "http://127.0.0.1:{not_mlflow}"},
            ["MLflow request failed", "127.0.0.1"],
        ),
        (
            [],
            {"MLFLOW_TRACKING_URI": "http://user:pw-secret@127.0.0.1:9"},
            ["http://127.0.0.1:9", "did not answer"],
        ),
    ],
    ids=[
        "fingerprint-glob",
        "nproc",
        "params-missing",
        "negative-timeout",
        "command-not-found",
        "command-unparsable",
        "workdir",
        "not-an-mlflow-server",
        "server-unreachable",
    ],
)
def test_bad_input_is_one_clear_error(run_cli, project, embedded_home, not_mlflow, args, env, needles):
    env = {k: v.format(not_mlflow=not_mlflow) for k, v in env.items()}
    base = ["train-gpu", "--model-name", "tiny", *CPU]
    if "--command" not in args:
        base += ["--command", f"{sys.executable} train_tiny.py handoff"]
    result = run_cli(*base, *args, env=env, cwd=project)
    assert_one_clear_error(result, *needles)
    assert "pw-secret" not in result.errors[0]


def test_missing_command_and_model_name(run_cli, project, embedded_home):
    assert_one_clear_error(run_cli("train-gpu", "--model-name", "tiny", cwd=project), "command")
    assert_one_clear_error(run_cli("train-gpu", "--command", "python x.py", cwd=project), "model-name")


@pytest.mark.act
def test_train_gpu_action_with_act(project, embedded_home):
    from test_actions import act_self_test

    log = act_self_test(
        "tests/workflows/train-gpu.yml",
        MLCICD_TEST_PYTHON=sys.executable,
        MLCICD_TEST_PROJECT=str(project),
        MLCICD_HOME=str(embedded_home),
    )
    assert "train: " in log and " models:/m-" in log and "broken: failure " in log
    use_store({})
    run_id = json.loads((project / "train.json").read_text())["run_id"]
    assert client().get_run(run_id).info.status == "FINISHED"
    broken = json.loads((project / "broken.json").read_text())
    assert client().get_run(broken["run_id"]).info.status == "FAILED"


def test_example_training_script_under_torchrun(run_cli, tmp_path, embedded_home):
    """examples/train.py, the template users copy, trains with 2 gloo processes and logs its model."""
    from conftest import EXAMPLES, load_example_generator

    load_example_generator().customers(3000, seed=1).to_parquet(tmp_path / "train.parquet", index=False)
    for name in ("train.py", "params.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    command = f"{sys.executable} train.py --data train.parquet --params params.yaml"
    result = run_cli(
        "train-gpu",
        "--command",
        command,
        "--model-name",
        "churn",
        *CPU,
        "--nproc-per-node",
        "2",
        "--params",
        "params.yaml",
        cwd=tmp_path,
    )
    assert result.rc == 0, result.log
    use_store({})
    run = client().get_run(result.outputs["run-id"])
    assert run.data.metrics["test_accuracy"] > 0.6 and "test_f1" in run.data.metrics
    assert run.data.params["epochs"] == "5"
    import mlflow
    import numpy as np

    model = mlflow.pyfunc.load_model(result.outputs["model-uri"])
    assert model.predict(np.zeros((3, 5), dtype=np.float32)).shape == (3, 1)


def test_reference_profile_is_stored_with_the_run_for_monitor(run_cli, project, embedded_home, example_data):
    """monitor finds the profile from the production alias alone: version → run → mlcicd/reference-profile.json.
    Without the option, validate-data's `reference` of the same config file is the one stored."""
    shutil.copy(example_data / "reference.json", project / "training-profile.json")
    (project / "mlcicd.yaml").write_text("validate-data:\n  reference: training-profile.json\n")
    result = train(run_cli, project, "handoff", "--config", "mlcicd.yaml")
    assert result.rc == 0, result.log
    use_store({})
    stored = Path(client().download_artifacts(result.outputs["run-id"], "mlcicd/reference-profile.json"))
    assert json.loads(stored.read_text()) == json.loads((example_data / "reference.json").read_text())

    (project / "broken.json").write_text('{"columns": ')
    runs_before = len(client().search_runs([client().get_experiment_by_name("tiny").experiment_id]))
    broken = train(run_cli, project, "handoff", "--reference-profile", "broken.json", "--retrain", "true")
    assert_one_clear_error(broken, "broken.json", "mlcicd profile")
    assert (
        len(client().search_runs([client().get_experiment_by_name("tiny").experiment_id])) == runs_before
    ), "no run was created"


def test_changing_only_the_training_data_retrains(run_cli, project, embedded_home):
    """The example's layout: validate-data's `data` is the training data, train-gpu declares no data of its own, and
    fingerprint-paths leave the data out. Halving the data, and nothing else, must train again."""
    data = project / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(100)))
    (project / "mlcicd.yaml").write_text(
        "validate-data:\n  data: data/train.csv\ntrain-gpu:\n  model-name: fed\n  fingerprint-paths: [train_tiny.py, params.yaml]\n"
    )

    def once():
        return run_cli(
            "train-gpu",
            "--command",
            f"{sys.executable} train_tiny.py handoff",
            *CPU,
            "--config",
            "mlcicd.yaml",
            cwd=project,
        )

    first = once()
    assert first.rc == 0, first.log
    use_store({})
    c = client()
    c.create_registered_model("fed")
    c.create_model_version(
        "fed",
        first.outputs["model-uri"],
        run_id=first.outputs["run-id"],
        tags={"mlcicd.fingerprint": first.outputs["fingerprint"]},
    )
    assert once().outputs["skipped"] == "true"

    (data / "train.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))  # half the rows
    changed = once()
    assert changed.rc == 0, changed.log
    assert (
        changed.outputs["skipped"] == "false"
        and changed.outputs["fingerprint"] != first.outputs["fingerprint"]
    )
    assert "mode=handoff" in changed.stdout

    # train-gpu's own `data` wins over validate-data's, and must exist: a clear error, before anything runs
    missing = run_cli(
        "train-gpu", "--command", f"{sys.executable} train_tiny.py handoff", *CPU, "--config", "mlcicd.yaml", "--data", "data/nope.parquet",
        cwd=project,
    )  # fmt: skip
    assert_one_clear_error(missing, "data/nope.parquet")

    # training data that validate-data does not check is said so
    (data / "extra.csv").write_text("x,y\n1,0\n")
    other = run_cli(
        "train-gpu", "--command", f"{sys.executable} train_tiny.py handoff", *CPU, "--config", "mlcicd.yaml", "--data", "data/extra.csv",
        cwd=project,
    )  # fmt: skip
    assert other.rc == 0, other.log
    assert (
        "training data not validated" in other.stdout
        and "validate-data checks data/train.csv" in other.stdout
    )

"""Faults with real processes: a tracking server killed mid-promotion, a router killed mid-canary,
a corrupted model artifact, a training process SIGKILLed as the OOM killer does, and reports
that cannot be written (read-only path, a device, a file-size quota, a full disk).

The other fault scenarios of docs/reliability.md have their tests beside the stage they hit:
SIGTERM mid-canary and Prometheus empty or down in tests/test_canary_shift.py, racing promotions
in tests/test_promote.py.
"""

from __future__ import annotations

import http.server
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from canary_rig import haproxy, model_servers, prometheus, start_process
from conftest import ROOT, Result, assert_one_clear_error, free_port, parse_outputs
from test_canary_shift import version_tags

PRODUCTION, PREVIOUS = "production", "previous-production"


def stage_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))}
    env.update(extra)
    return env


def run_stage(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180, preexec_fn=None
) -> Result:
    """The CLI in a process of its own, as Actions runs it (GITHUB_ACTIONS=true, real output files)."""
    out, summary = cwd / f"output-{time.monotonic_ns()}", cwd / f"summary-{time.monotonic_ns()}"
    out.touch()
    summary.touch()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "mlcicd", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    summary_text = summary.read_text() if summary.is_file() else ""
    return Result(proc.returncode, proc.stdout, proc.stderr, parse_outputs(out.read_text()), summary_text)


def registry_of(uri: str, name: str) -> tuple[dict[str, str], list[dict], dict[str, dict[str, str]]]:
    from mlflow import MlflowClient

    from mlcicd.stages.promote import read_history

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    model = client.get_registered_model(name)
    versions = {str(v.version): dict(v.tags) for v in client.search_model_versions(f"name = '{name}'")}
    return {a: str(v) for a, v in model.aliases.items()}, read_history(model.tags), versions


# --- 1. the tracking server dies during a promotion ------------------------------------------------


class CrashingProxy:
    """The tracking server as promote sees it: a pass-through proxy that SIGKILLs the real `mlflow
    server` right after the first alias write of a promotion has been answered, then answers 503
    (a load balancer in front of a dead server) while it is down."""

    def __init__(self, server, backend: str) -> None:
        self.server, self.backend, self.armed, self.killed = server, backend, False, threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    response = requests.request(
                        self.command, proxy.backend + self.path, data=body, timeout=30,
                        headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")},
                    )  # fmt: skip
                    status, content = response.status_code, response.content
                except requests.RequestException:
                    status, content = 503, b'{"error_code": "TEMPORARILY_UNAVAILABLE"}'
                if proxy.armed and self.command == "POST" and self.path.endswith("/registered-models/alias"):
                    proxy.armed = False
                    proxy.server.kill()  # the first alias is written; the server dies before the second
                    proxy.killed.set()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A real `mlflow server` that a test kills and starts again (same port, same database), with
    `churn` registered: version 1 @production, version 2 gates passed."""
    root = tmp_path_factory.mktemp("tracking")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    argv = [
        Path(sys.executable).with_name("mlflow"), "server", "--host", "127.0.0.1", "--port", port, "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", root / "artifacts",
    ]  # fmt: skip
    with start_process(
        argv, url=f"{uri}/health", timeout=120, log_path=root / "server.log", cwd=root
    ) as server:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model("churn")
        experiment = client.create_experiment("faults")
        for _ in range(2):  # promote moves aliases by version number: the versions need no model files
            run = client.create_run(experiment)
            version = client.create_model_version(
                "churn", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
            ).version
            client.set_model_version_tag("churn", version, "mlcicd.gates.passed", "true")
        client.set_registered_model_alias("churn", PRODUCTION, "1")
        yield server, uri, root


def promote_to_production(name: str) -> list[str]:
    return ["promote", "--model-name", name, "--version", "2", "--alias", PRODUCTION]


@pytest.fixture(scope="module")
def promotion_crash(tracking):
    """A promotion of version 2 whose server dies half way and stays down; then the server is back."""
    server, uri, root = tracking
    before = registry_of(uri, "churn")
    proxy = CrashingProxy(server, uri)
    try:
        proxy.armed = True
        # No client retries: the server stays down, the step must fail now and say so.
        env = stage_env(
            MLFLOW_TRACKING_URI=proxy.url, MLCICD_HOME=str(root / "home"), MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"
        )
        crashed = run_stage(promote_to_production("churn"), root, env)
    finally:
        proxy.close()
    assert proxy.killed.is_set(), "the server was never killed: promote wrote no alias"
    server.start()
    return {"uri": uri, "root": root, "before": before, "crashed": crashed}


def test_tracking_server_killed_mid_promotion_leaves_production_where_it_was(promotion_crash):
    crash = promotion_crash
    assert_one_clear_error(crash["crashed"], "MLflow")
    aliases, history, _ = registry_of(crash["uri"], "churn")
    # previous-production is written first, so the one alias that serves traffic never half-moves,
    # and no history event claims a promotion that did not happen.
    assert aliases[PRODUCTION] == crash["before"][0][PRODUCTION] == "1"
    assert history == crash["before"][1] == []


def test_a_rerun_after_the_server_is_back_completes_the_promotion(promotion_crash):
    crash = promotion_crash
    env = stage_env(MLFLOW_TRACKING_URI=crash["uri"], MLCICD_HOME=str(crash["root"] / "home"))
    rerun = run_stage(promote_to_production("churn"), crash["root"], env, timeout=12)
    assert rerun.rc == 0, rerun.log
    aliases, history, _ = registry_of(crash["uri"], "churn")
    assert aliases == {PRODUCTION: "2", PREVIOUS: "1"}
    assert [(e["from"], e["to"]) for e in history] == [("1", "2")]


# --- 2. the router dies mid-canary; a rerun restores stable from the recorded state -----------------


@pytest.fixture
def registered_version(embedded_home) -> tuple[str, str]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{embedded_home / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        client.create_registered_model("churn")
        version = str(client.create_model_version("churn", source=str(embedded_home), run_id=None).version)
        client.set_model_version_tag(
            "churn", version, "mlcicd.gates.passed", "true"
        )  # a rollout needs a passed verdict
        return "churn", version
    finally:
        mlflow.set_tracking_uri(None)


def test_router_killed_mid_canary_then_a_restore_rerun_puts_stable_back(
    tmp_path, embedded_home, registered_version
):
    name, version = registered_version
    env = stage_env(MLCICD_HOME=str(embedded_home))
    with model_servers(tmp_path) as servers, haproxy(tmp_path, *servers) as lb, prometheus(tmp_path) as prom:
        router = f"{{type: haproxy, address: '{lb.admin_address}', backend: model, timeout: 1}}"
        args = [
            "canary-shift",
            "--router",
            router,
            "--model-name",
            name,
            "--version",
            version,
            "--steps",
            "30,60",
            "--interval",
            "5s",
        ]
        metrics = ["--metrics", f"{{type: prometheus, address: '{prom.url}'}}"]
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlcicd", *args, *metrics, "--report", str(tmp_path / "shift.json")],
            env={**env, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while lb.weights()["canary"] != 30:
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read() if proc.poll() is not None else "timeout"
            )
            time.sleep(0.05)
        lb.kill()
        log, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1, log
        errors = [line for line in log.splitlines() if line.startswith("::error")]
        assert len(errors) == 1 and "traffic state unknown" in errors[0] and "mode: restore" in errors[0], log
        assert "result" not in parse_outputs(
            out.read_text()
        )  # the action's restore step keys on an empty result
        recorded = version_tags(embedded_home, name, version)
        assert recorded["mlcicd.canary.state"] == "failed" and recorded["mlcicd.canary.weight"] == "30"

        lb.restart()
        lb.set_weight("canary", 30)  # its state survived the restart (server-state-file)
        lb.set_weight("stable", 70)
        restored = run_stage(
            [*args, "--mode", "restore", "--report", str(tmp_path / "restore.json")], tmp_path, env
        )
        assert restored.rc == 0 and restored.outputs["result"] == "rolled-back" and not restored.errors, (
            restored.log
        )
        assert lb.weights()["canary"] == 0
        report = json.loads((tmp_path / "restore.json").read_text())
        assert report["recorded_state"]["state"] == "failed" and report["recorded_state"]["weight"] == "30"
        assert (
            "had canary 30 %" in report["message"] and "recorded `failed` at canary 30 %" in report["message"]
        )
        after = version_tags(embedded_home, name, version)
        assert after["mlcicd.canary.state"] == "rolled-back" and after["mlcicd.canary.weight"] == "0"


# --- 6. a corrupted model artifact: check-gates fails cleanly, nothing is promoted ---------------------


@pytest.fixture
def corrupted_candidate(embedded_home, tmp_path):
    """`churn` v1 (@production, gates passed) and v2, a real torch model whose weights file is cut in half."""
    import mlflow
    import torch

    mlflow.set_tracking_uri(f"sqlite:///{embedded_home / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        experiment = client.create_experiment(
            "faults", artifact_location=(embedded_home / "artifacts").as_uri()
        )
        client.create_registered_model("churn")
        net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=1))
        versions, model_ids = [], []
        for _ in range(2):
            with mlflow.start_run(experiment_id=experiment) as run:
                info = mlflow.pytorch.log_model(
                    net, name="model", pip_requirements=["torch"], serialization_format="pickle"
                )
            versions.append(
                client.create_model_version("churn", info.model_uri, run_id=run.info.run_id).version
            )
            model_ids.append(info.model_id)
        client.set_registered_model_alias("churn", PRODUCTION, versions[0])
        client.set_model_version_tag("churn", versions[0], "mlcicd.gates.passed", "true")
        weights = [p for p in (embedded_home / "artifacts").rglob("model.pth") if model_ids[1] in str(p)]
        assert len(weights) == 1, weights
        weights[0].write_bytes(weights[0].read_bytes()[: weights[0].stat().st_size // 2])
    finally:
        mlflow.set_tracking_uri(None)
    data = tmp_path / "test.csv"
    data.write_text("f0,f1,label\n" + "".join(f"{i % 5}.0,{i % 3}.0,{i % 2}\n" for i in range(40)))
    return data


def test_corrupted_artifact_fails_the_gates_cleanly_and_nothing_is_promoted(
    embedded_home, corrupted_candidate, tmp_path
):
    env = stage_env(MLCICD_HOME=str(embedded_home))
    before = registry_of(f"sqlite:///{embedded_home / 'mlflow.db'}", "churn")
    gates = run_stage(
        [
            "check-gates",
            "--model-uri",
            "models:/churn/2",
            "--test-data",
            str(corrupted_candidate),
            "--target",
            "label",
        ],
        tmp_path,
        env,
    )
    assert_one_clear_error(gates, "models:/churn/2", "does not load")
    promoted = run_stage(
        ["promote", "--model-name", "churn", "--version", "2", "--alias", PRODUCTION], tmp_path, env
    )
    assert promoted.rc == 1 and len(promoted.errors) == 1 and "gates" in promoted.errors[0], promoted.log
    after = registry_of(f"sqlite:///{embedded_home / 'mlflow.db'}", "churn")
    assert after[0] == before[0] == {PRODUCTION: "1"}
    assert "mlcicd.gates.passed" not in after[2]["2"] and after[1] == before[1]


# --- 7. the training process is OOM-killed ----------------------------------------------------------


@pytest.fixture(scope="module")
def oom_killed(tmp_path_factory):
    """train-gpu whose command is SIGKILLed (what the kernel's OOM killer sends) after it has started logging."""
    home, work = tmp_path_factory.mktemp("oom-home"), tmp_path_factory.mktemp("oom-work")
    command = f"{sys.executable} -c \"import os, signal; print('allocating the batch', flush=True); os.kill(os.getpid(), signal.SIGKILL)\""
    result = run_stage(
        [
            "train-gpu",
            "--command",
            command,
            "--model-name",
            "churn",
            "--require-gpu",
            "false",
            "--report",
            str(work / "train.json"),
        ],
        work,
        stage_env(MLCICD_HOME=str(home)),
    )
    return result, home, work


def test_oom_killed_training_fails_the_run_and_registers_nothing(oom_killed):
    from mlflow import MlflowClient

    result, home, work = oom_killed
    assert result.rc == 1 and len(result.errors) == 1 and "Traceback" not in result.log, result.log
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_run(result.outputs["run-id"]).info.status == "FAILED"
    assert client.search_registered_models() == [] and client.search_model_versions() == []
    assert result.outputs["model-uri"] == ""
    assert json.loads((work / "train.json").read_text())["failed"]


def test_oom_killed_training_says_it_was_killed(oom_killed):
    result, _, _ = oom_killed
    assert "SIGKILL" in result.errors[0] and "memory" in result.errors[0], result.errors


# --- 8. reports that cannot be written ----------------------------------------------------------------


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))  # a quota: small writes pass, the report does not


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("small")
    (root / "data.csv").write_text("age,plan,churned\n42.0,basic,0\n51.5,pro,1\n")
    shutil.copy(ROOT / "tests" / "bad_inputs" / "schemas" / "good.yaml", root / "schema.yaml")
    return root / "data.csv", root / "schema.yaml"


@pytest.mark.parametrize(
    "report, limit, needles",
    [
        (
            "/sys/mlcicd-report.json",
            None,
            ["/sys/mlcicd-report.json", "report not writable"],
        ),  # a read-only mount, even for root
        ("/dev/full", None, ["/dev/full", "not a regular file"]),
        ("{work}/quota/report.json", limit_file_size, ["report.json", "File too large"]),
    ],
    ids=["read-only-path", "device-as-report", "file-size-quota"],
)
def test_unwritable_report_is_exit_2_naming_the_path(small_data, tmp_path, report, limit, needles):
    data, schema = small_data
    report = report.format(work=tmp_path)
    result = run_stage(
        ["validate-data", "--data", str(data), "--schema", str(schema), "--report", report],
        tmp_path,
        stage_env(),
        preexec_fn=limit,
    )
    assert_one_clear_error(result, *[n.format(work=tmp_path) for n in needles])
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # never replaced by a report file


def test_unwritable_report_stops_check_gates_before_the_verdict_is_recorded(
    embedded_home, corrupted_candidate, tmp_path
):
    env = stage_env(MLCICD_HOME=str(embedded_home))
    before = registry_of(f"sqlite:///{embedded_home / 'mlflow.db'}", "churn")
    args = [
        "check-gates",
        "--model-uri",
        "models:/churn/1",
        "--test-data",
        str(corrupted_candidate),
        "--target",
        "label",
    ]
    result = run_stage([*args, "--report", "/sys/gates.json"], tmp_path, env)
    assert_one_clear_error(result, "/sys/gates.json")
    assert registry_of(f"sqlite:///{embedded_home / 'mlflow.db'}", "churn") == before


def test_full_disk_for_the_step_summary_is_exit_2(small_data, tmp_path):
    data, schema = small_data
    result = run_stage(
        ["validate-data", "--data", str(data), "--schema", str(schema), "--report", str(tmp_path / "r.json")],
        tmp_path,
        stage_env(GITHUB_STEP_SUMMARY="/dev/full"),  # writes fail with ENOSPC, as on a full disk
    )
    assert_one_clear_error(result, "No space left on device")


def test_full_disk_for_the_step_summary_names_the_file(small_data, tmp_path):
    data, schema = small_data
    result = run_stage(
        ["validate-data", "--data", str(data), "--schema", str(schema), "--report", str(tmp_path / "r.json")],
        tmp_path,
        stage_env(GITHUB_STEP_SUMMARY="/dev/full"),
    )
    assert_one_clear_error(result, "/dev/full")

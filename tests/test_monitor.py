"""monitor and pr-report against real processes: an MLflow server, HAProxy in front of two model
servers, Prometheus scraping a live quality gauge. GitHub's REST API cannot be reached from here:
tests/fixtures/github_api.py stands in for it, following the documented endpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlcicd.stages.monitor import TAG_RETRAIN, degraded, recent_dispatch, wants_retrain

from canary_rig import haproxy, model_servers, prometheus
from conftest import ROOT, assert_one_clear_error, load_example_generator

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from github_api import FakeGitHub


def test_degradation_limits():
    assert degraded(0.81, 0.84, 0.03, "higher") == (True, pytest.approx(0.8148))
    assert degraded(0.82, 0.84, 0.03, "higher")[0] is False
    assert degraded(0.0106, 0.01, 0.05, "lower") == (True, pytest.approx(0.0105))
    assert degraded(0.0104, 0.01, 0.05, "lower")[0] is False
    assert degraded(-1.2, -1.0, 0.1, "higher") == (
        True,
        pytest.approx(-1.1),
    )  # a log-likelihood: below −1.1 is worse


def test_what_dispatches_a_retrain():
    assert wants_retrain("any", True, False) and wants_retrain("any", False, True)
    assert wants_retrain("drift", True, False) and not wants_retrain("drift", False, True)
    assert not wants_retrain("degradation", True, False) and wants_retrain("degradation", False, True)
    assert not wants_retrain("any", False, False)


def test_retrain_cooldown_reads_the_dispatch_tag():
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    def version(stamp: str) -> SimpleNamespace:
        return SimpleNamespace(tags={TAG_RETRAIN: stamp})

    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    assert recent_dispatch(version(hour_ago.isoformat()), 86400) == hour_ago.isoformat()
    assert recent_dispatch(version(hour_ago.isoformat()), 1800) == ""  # the cooldown is over
    naive = hour_ago.replace(tzinfo=None).isoformat()  # set by hand, without an offset: read as UTC
    assert recent_dispatch(version(naive), 86400) == naive
    assert (
        recent_dispatch(version("yesterday"), 86400) == ""
        and recent_dispatch(SimpleNamespace(tags={}), 86400) == ""
    )


# --- the rig ------------------------------------------------------------------------------------


class QualityExporter:
    """A service exporting one live quality number: `model_f1` for Prometheus, and `{"f1": …}` as JSON."""

    def __init__(self, value: float) -> None:
        self.value = value
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, kind = (
                        f"# TYPE model_f1 gauge\nmodel_f1 {exporter.value}\n".encode(),
                        "text/plain; version=0.0.4",
                    )
                else:
                    body, kind = json.dumps({"live": {"f1": exporter.value}}).encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Rig:
    def __init__(self, tmp: Path, uri: str, lb, prom, exporter: QualityExporter, gh: FakeGitHub) -> None:
        self.tmp, self.uri, self.lb, self.prom, self.exporter, self.gh = tmp, uri, lb, prom, exporter, gh
        self.data = tmp / "data"

    def set_quality(self, value: float) -> None:
        """Change the live number and wait until Prometheus has scraped it."""
        self.exporter.value = value
        deadline = time.monotonic() + 20
        while self.prom.value("model_f1") != value:
            assert time.monotonic() < deadline, "Prometheus did not scrape the new value"
            time.sleep(0.2)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "GITHUB_API_URL": self.gh.url,
            "GITHUB_REPOSITORY": "acme/churn",
            "GITHUB_REF_NAME": "main",
            "MLCICD_GITHUB_TOKEN": "good-token",
            "MLCICD_WEBHOOK_URL": f"{self.gh.url}/hooks/T000/B000/secret",
            **extra,
        }


@pytest.fixture(scope="module")
def rig(tmp_path_factory, mlflow_server) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("monitor")
    data = tmp / "data"
    data.mkdir()
    make = load_example_generator()
    make.customers(4000, seed=1).to_parquet(data / "train.parquet")
    make.customers(3000, seed=2).drop(columns="churned").to_parquet(
        data / "recent.parquet"
    )  # production has no labels yet
    make.customers(3000, seed=3, income_shift=0.6, pro_share=0.6).to_parquet(data / "drifted.parquet")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlcicd",
            "profile",
            "--data",
            str(data / "train.parquet"),
            "--out",
            str(data / "reference.json"),
        ],
        check=True,
        capture_output=True,
    )
    exporter = QualityExporter(0.84)
    with (
        model_servers(tmp) as servers,
        haproxy(tmp, *servers, stable_weight=0, canary_weight=100) as lb,
        prometheus(tmp, [(None, exporter.address)]) as prom,
        FakeGitHub(workflows={"ml.yml": {"retrain"}}, read_only={"read-only-token"}) as gh,
    ):
        yield Rig(tmp, mlflow_server, lb, prom, exporter, gh)
    exporter.server.shutdown()
    exporter.server.server_close()


def register(rig: Rig, name: str, versions: int = 2) -> None:
    """`versions` versions, each from a run that stores the reference profile (as train-gpu does), the last @production."""
    from mlflow import MlflowClient

    client = MlflowClient(rig.uri)
    experiment = client.get_experiment_by_name("monitor-tests") or client.get_experiment(
        client.create_experiment("monitor-tests")
    )
    client.create_registered_model(name)
    stored = rig.tmp / "stored" / "reference-profile.json"
    stored.parent.mkdir(exist_ok=True)
    shutil.copyfile(rig.data / "reference.json", stored)
    for _ in range(versions):
        run = client.create_run(experiment.experiment_id)
        run_id = run.info.run_id
        client.log_artifact(run_id, str(stored), "mlcicd")
        client.log_text(run_id, "stand-in model", "model/MLmodel")
        client.log_metric(run_id, "gates.f1", 0.84)
        client.set_terminated(run_id)
        version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        client.set_model_version_tag(name, version.version, "mlcicd.gates.passed", "true")
        client.set_registered_model_alias(name, "previous-production", str(int(version.version) - 1)) if int(
            version.version
        ) > 1 else None
        client.set_registered_model_alias(name, "production", version.version)


def aliases(rig: Rig, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return {a: str(v) for a, v in MlflowClient(rig.uri).get_registered_model(name).aliases.items()}


def monitor(run_cli, rig: Rig, name: str, *args: str, **env: str):
    return run_cli("monitor", "--model-name", name, *args, env=rig.env(**env), cwd=rig.tmp)


QUALITY = "--quality"


def prometheus_quality(rig: Rig) -> str:
    return json.dumps({"type": "prometheus", "address": rig.prom.url, "query": "model_f1"})


def haproxy_router(rig: Rig) -> str:
    return json.dumps({"type": "haproxy", "address": rig.lb.admin_address, "backend": "model"})


# --- scenarios ------------------------------------------------------------------------------------


def test_healthy_records_the_baseline_then_stays_quiet(run_cli, rig):
    name = f"healthy-{uuid.uuid4().hex[:6]}"
    register(rig, name)
    rig.set_quality(0.84)
    before = len(rig.gh.state.requests)
    args = (
        "--data",
        str(rig.data / "recent.parquet"),
        "--target",
        "churned",
        QUALITY,
        prometheus_quality(rig),
        "--quality-metric",
        "f1",
    )
    first = monitor(run_cli, rig, name, *args, "--retrain-workflow", "ml.yml", "--issue", "true")
    assert first.rc == 0, first.log
    assert first.outputs["status"] == "healthy" and first.outputs["rolled-back"] == "false", first.log
    assert "recorded as the baseline" in first.summary and "no drift" in first.summary
    rig.set_quality(0.83)  # 1.2 % lower: within the 3 % tolerance
    second = monitor(run_cli, rig, name, *args, "--retrain-workflow", "ml.yml", "--issue", "true")
    assert second.rc == 0, second.log
    report = json.loads((rig.tmp / second.outputs["report"]).read_text())
    assert report["quality"]["baseline"] == 0.84 and report["quality"]["degraded"] is False
    assert report["quality"]["limit"] == pytest.approx(0.84 * 0.97)
    assert rig.gh.state.requests[before:] == [] and not rig.gh.state.hooks, "a healthy model calls nobody"
    assert aliases(rig, name)["production"] == "2"


def test_drifted_inputs_dispatch_a_retrain_and_open_one_issue(run_cli, rig):
    name = f"drift-{uuid.uuid4().hex[:6]}"
    register(rig, name)
    weights = rig.lb.weights()
    writes = len(rig.gh.state.writes())
    args = ("--data", str(rig.data / "drifted.parquet"), "--retrain-workflow", "ml.yml", "--issue", "true")
    result = monitor(run_cli, rig, name, *args)
    assert result.rc == 1, result.log
    assert result.outputs["status"] == "drift" and result.outputs["retrain-dispatched"] == "true"
    assert "income" in json.loads(result.outputs["drifted-features"]), result.outputs
    assert len(result.errors) == 1 and "dispatched `ml.yml` on `main`" in result.errors[0], result.log
    dispatch, issue = rig.gh.state.writes()[writes:]
    assert (dispatch.method, dispatch.path) == (
        "POST",
        "/repos/acme/churn/actions/workflows/ml.yml/dispatches",
    )
    assert dispatch.body == {"ref": "main", "inputs": {"retrain": "true"}} and dispatch.token == "good-token"
    assert (issue.method, issue.path) == ("POST", "/repos/acme/churn/issues") and issue.body["labels"] == [
        "ml-cicd-monitor"
    ]
    hook = rig.gh.state.hooks[-1]
    assert set(hook) == {"text"} and name in hook["text"] and "drift" in hook["text"]
    # The job token and the webhook URL (a secret: whoever has it can post) are masked before anything prints them.
    assert (
        "::add-mask::good-token" in result.stdout
        and "::add-mask::" + rig.env()["MLCICD_WEBHOOK_URL"] in result.stdout
    )
    shown = result.log.replace("::add-mask::good-token", "").replace(
        "::add-mask::" + rig.env()["MLCICD_WEBHOOK_URL"], ""
    )
    report_text = (rig.tmp / result.outputs["report"]).read_text()
    for secret in ("good-token", "/hooks/T000/B000/secret"):
        assert secret not in shown and secret not in report_text and secret not in result.summary
    # Nothing about traffic or the registry: drift alone is not a reason to take the model down.
    assert rig.lb.weights() == weights and aliases(rig, name) == {
        "production": "2",
        "previous-production": "1",
    }

    again = monitor(run_cli, rig, name, *args)
    assert again.rc == 1, again.log
    assert "already dispatched at" in again.errors[0], (
        "one retrain per version and cooldown, not one per scheduled run"
    )
    assert not [r for r in rig.gh.state.writes()[writes + 2 :] if r.path.endswith("/dispatches")]
    issues = [i for i in rig.gh.state.issues.values() if f"mlcicd-monitor: {name} " in i["body"]]
    assert len(issues) == 1, "the second run updates the issue it opened"
    assert (
        rig.gh.state.writes()[-1].method == "PATCH"
        and rig.gh.state.writes()[-1].path == f"/repos/acme/churn/issues/{issues[0]['number']}"
    )


def test_degraded_quality_rolls_back_alias_and_traffic(run_cli, rig):
    from mlflow import MlflowClient

    name = f"degraded-{uuid.uuid4().hex[:6]}"
    register(rig, name)
    rig.lb.set_weight("stable", 0)
    rig.lb.set_weight("canary", 100)  # after a completed rollout the canary server serves everyone
    rig.set_quality(0.79)  # gates said 0.84: 0.79 < 0.84 × 0.97
    quality = json.dumps(
        {"type": "http", "address": f"http://{rig.exporter.address}/quality.json", "field": "live.f1"}
    )
    config = rig.tmp / "rollback.yaml"  # no monitor router: the rollout's own router is the one to restore
    config.write_text(f"canary-shift:\n  router: {haproxy_router(rig)}\n")
    result = monitor(
        run_cli, rig, name, QUALITY, quality, "--quality-metric", "f1", "--baseline", "gates",
        "--config", str(config), "--retrain-workflow", "ml.yml",
    )  # fmt: skip
    assert result.rc == 1, result.log
    assert result.outputs["status"] == "degraded" and result.outputs["rolled-back"] == "true", result.log
    assert rig.lb.weights() == {"stable": 100, "canary": 0}
    assert aliases(rig, name)["production"] == "1"
    client = MlflowClient(rig.uri)
    history = [
        json.loads(v)
        for k, v in sorted(client.get_registered_model(name).tags.items())
        if k.startswith("mlcicd.history.")
    ]
    assert history[-1]["mode"] == "rollback" and history[-1]["from"] == "2" and history[-1]["to"] == "1"
    assert history[-1]["reason"].startswith("monitor: f1 0.790 below the limit 0.815 (baseline 0.840"), (
        history[-1]
    )
    assert "mlcicd.monitor.rolled_back" in client.get_model_version(name, "2").tags
    assert (
        len(result.errors) == 1 and "Rolled back" in result.errors[0] and "canary 0 %" in result.errors[0]
    ), result.log
    assert rig.gh.state.writes()[-1].body == {"ref": "main", "inputs": {"retrain": "true"}}


def test_after_a_handoff_a_rollback_puts_the_previous_version_back_on_stable(run_cli, rig):
    """Stable serves the degraded v2 (handed over), the canary nothing: with the rollout's deploy command
    in the config, the rollback redeploys v1 through canary-shift's rollback before the alias moves."""
    from mlflow import MlflowClient

    name = f"handed-over-{uuid.uuid4().hex[:6]}"
    register(rig, name)
    rig.lb.set_weight("canary", 0)
    rig.lb.set_weight("stable", 100)
    rig.set_quality(0.79)
    log = rig.tmp / f"{name}-deploys.log"
    quality = json.dumps(
        {"type": "http", "address": f"http://{rig.exporter.address}/quality.json", "field": "live.f1"}
    )
    config = rig.tmp / f"{name}.yaml"
    command = f'echo "$DEPLOY_TARGET $MODEL_URI" >> {log}'
    config.write_text(f"canary-shift:\n  router: {haproxy_router(rig)}\n  deploy-command: '{command}'\n")
    try:
        result = monitor(
            run_cli,
            rig,
            name,
            QUALITY,
            quality,
            "--quality-metric",
            "f1",
            "--baseline",
            "gates",
            "--config",
            str(config),
        )
    finally:
        rig.lb.set_weight("stable", 0)
        rig.lb.set_weight("canary", 100)  # the module's other scenarios start from a canary serving everyone
    assert result.rc == 1 and result.outputs["rolled-back"] == "true", result.log
    assert log.read_text().splitlines() == [f"canary models:/{name}/1", f"stable models:/{name}/1"]
    assert aliases(rig, name)["production"] == "1"
    tags = MlflowClient(rig.uri).get_registered_model(name).tags
    assert json.loads(tags["mlcicd.rollout"])["stable"] == "1"  # what stable serves and @production agree
    assert (
        len(result.errors) == 1
        and "version 1 (@previous-production) is on the stable server" in result.errors[0]
    ), result.log


def test_metrics_source_down_changes_nothing(run_cli, rig):
    name = f"down-{uuid.uuid4().hex[:6]}"
    register(rig, name)
    weights, writes = rig.lb.weights(), len(rig.gh.state.writes())
    down = json.dumps(
        {"type": "prometheus", "address": "http://127.0.0.1:9", "query": "model_f1", "timeout": 2}
    )
    result = monitor(
        run_cli, rig, name, QUALITY, down, "--router", haproxy_router(rig), "--retrain-workflow", "ml.yml"
    )
    assert_one_clear_error(result, "quality source unreachable", "quality.address", "nothing was changed")
    assert rig.lb.weights() == weights and aliases(rig, name) == {
        "production": "2",
        "previous-production": "1",
    }
    assert len(rig.gh.state.writes()) == writes


def test_a_token_that_may_not_dispatch_is_named_in_the_one_error(run_cli, rig):
    name = f"forbidden-{uuid.uuid4().hex[:6]}"
    register(rig, name, versions=1)
    result = monitor(
        run_cli,
        rig,
        name,
        "--data",
        str(rig.data / "drifted.parquet"),
        "--retrain-workflow",
        "ml.yml",
        MLCICD_GITHUB_TOKEN="read-only-token",
    )
    assert result.rc == 1 and len(result.errors) == 1, result.log
    assert "HTTP 403" in result.errors[0] and "actions: write" in result.errors[0], result.errors
    assert "read-only-token" not in result.log.replace("::add-mask::read-only-token", "")


def test_version_without_a_stored_profile_is_a_usage_error(run_cli, rig):
    from mlflow import MlflowClient

    name = f"noprofile-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(rig.uri)
    client.create_registered_model(name)
    version = client.create_model_version(
        name, "s3://elsewhere/models/churn"
    )  # registered from outside an MLflow run
    client.set_registered_model_alias(name, "production", version.version)
    result = monitor(run_cli, rig, name, "--data", str(rig.data / "recent.parquet"))
    assert_one_clear_error(result, "reference-profile", "no MLflow run")


# --- pr-report ----------------------------------------------------------------------------------

GATES_REPORT = {
    "stage": "check-gates",
    "passed": False,
    "failed_gates": ["improvement: f1"],
    "baseline": {"alias": "production", "model_version": "4", "first_run": None},
    "test_rows": 2000,
    "gates": [
        {
            "gate": "min accuracy",
            "candidate": 0.86,
            "baseline": 0.85,
            "delta": 0.01,
            "threshold": 0.8,
            "passed": True,
            "detail": "",
        },
        {
            "gate": "improvement: f1",
            "candidate": 0.71,
            "baseline": 0.74,
            "delta": -0.03,
            "threshold": 0.0,
            "passed": False,
            "detail": "",
        },
    ],
    "significance": {
        "f1": {"delta": -0.03, "ci_low": -0.05, "ci_high": -0.01, "p_value": 0.998, "n_resamples": 2000}
    },
    "latency": {
        "candidate": {
            "1": {
                "p50_ms": 0.4,
                "p95_ms": 0.6,
                "p99_ms": 0.9,
                "throughput_rows_per_s": 2500.0,
                "device": "cpu",
            }
        }
    },
}


def test_pull_request_comment_is_created_once_then_updated(run_cli, rig, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(rig.uri)
    experiment = client.get_experiment_by_name("monitor-tests") or client.get_experiment(
        client.create_experiment("monitor-tests")
    )
    run_id = client.create_run(experiment.experiment_id).info.run_id
    (tmp_path / "check-gates.json").write_text(json.dumps(GATES_REPORT))
    client.log_artifact(run_id, str(tmp_path / "check-gates.json"), "mlcicd")
    pr = rig.gh.state.add_issue("Tune the learning rate", pull_request=True)
    for i in range(130):  # more than one page of comments: ours must be found on page 2
        rig.gh.state.add_comment(pr["number"], f"review comment {i}")
    jobs = {
        "validate-data": {
            "result": "success",
            "outputs": {"passed": "true", "drifted-features": '["income"]', "rows": "3000"},
        },
        "train-gpu": {
            "result": "success",
            "outputs": {"run-id": run_id, "model-name": "churn", "skipped": "false"},
        },
        "check-gates": {"result": "failure", "outputs": {"passed": "false"}},
    }
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": pr["number"]}, "number": pr["number"]}))
    env = {
        **rig.env(),
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_SHA": "a" * 40,
    }

    first = run_cli("pr-report", "--jobs", json.dumps(jobs), env=env, cwd=tmp_path)
    assert first.rc == 0 and first.outputs["comment"] == "created", first.log
    assert "::add-mask::good-token" in first.stdout and "good-token" not in first.log.replace(
        "::add-mask::good-token", ""
    )
    ours = [c for c in rig.gh.state.comments.values() if "<!-- mlcicd-pr-report: churn -->" in c["body"]]
    assert len(ours) == 1
    body = ours[0]["body"]
    assert (
        "❌ the candidate failed the gates" in body and "| improvement: f1 | 0.710 | 0.740 | -0.030 |" in body
    )
    assert "| f1 | -0.030 | [-0.050, -0.010] | 0.998 |" in body and "### Latency (ms)" in body
    assert "Drift: 1 feature(s) drifted: `income`" in body and "`check-gates` | ❌ failure" in body

    second = run_cli("pr-report", "--jobs", json.dumps(jobs), env=env, cwd=tmp_path)
    assert second.rc == 0 and second.outputs["comment"] == "updated", second.log
    assert [c["id"] for c in rig.gh.state.comments.values() if "mlcicd-pr-report: churn" in c["body"]] == [
        ours[0]["id"]
    ]
    pages = [
        r
        for r in rig.gh.state.requests
        if r.path.endswith(f"/issues/{pr['number']}/comments") and r.method == "GET"
    ]
    assert any("page" in r.query for r in pages), "the second page was followed through the Link header"

    forked = run_cli(
        "pr-report",
        "--jobs",
        json.dumps(jobs),
        env={**env, "MLCICD_GITHUB_TOKEN": "read-only-token"},
        cwd=tmp_path,
    )
    assert forked.rc == 0 and forked.outputs["comment"] == "failed", forked.log
    assert (
        not forked.errors and "Resource not accessible by integration" in forked.log and "fork" in forked.log
    )
    assert "## ml-cicd · `churn`" in forked.summary, "the report still reaches the step summary"


def test_pr_report_outside_a_pull_request_only_writes_the_summary(run_cli, rig, tmp_path):
    report = tmp_path / "check-gates.json"
    report.write_text(json.dumps({**GATES_REPORT, "passed": True, "failed_gates": []}))
    result = run_cli(
        "pr-report",
        "--reports",
        str(report),
        "--model-name",
        "churn",
        env={"MLCICD_GITHUB_TOKEN": "x"},
        cwd=tmp_path,
    )
    assert result.rc == 0 and result.outputs["comment"] == "skipped", result.log
    assert "✅ the candidate passed the gates" in result.summary


def test_before_the_first_rollout_monitor_says_so_and_passes(run_cli, tmp_path):
    """No registered model yet, then a model with @staging only: a notice and exit 0, nothing else."""
    from mlflow import MlflowClient

    home = tmp_path / "home"
    env = {"MLCICD_HOME": str(home)}
    data = tmp_path / "recent.csv"
    data.write_text("x\n1\n")
    first = run_cli("monitor", "--model-name", "churn", "--data", str(data), env=env, cwd=tmp_path)
    assert first.rc == 0 and first.outputs["status"] == "not-deployed", first.log
    assert (
        "::notice title=monitor%3A nothing to watch yet for churn::no registered model `churn` yet"
        in first.stdout
    )
    assert not first.errors and "nothing to watch yet" in first.summary

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("e", artifact_location=(home / "a").as_uri()))
    client.create_registered_model("churn")
    client.create_model_version("churn", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("churn", "staging", "1")
    second = run_cli("monitor", "--model-name", "churn", "--data", str(data), env=env, cwd=tmp_path)
    assert second.rc == 0 and second.outputs["status"] == "not-deployed", second.log
    assert "`churn` has no @production yet (aliases: staging → 1)" in second.stdout, second.log
    report = json.loads((tmp_path / second.outputs["report"]).read_text())
    assert report["status"] == "not-deployed" and report["model"]["version"] is None

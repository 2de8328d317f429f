"""A rollout's life around the shift, on a real HAProxy, Prometheus and model servers under load,
with a real embedded registry: the handoff to stable, the refusals before any traffic moves
(gates, a busy canary), a failed handoff, abort of a running rollout, re-asserted weights after a
router reload, and a rollback that puts @previous-production back on stable.

The deploy command here writes what it was asked to do into a log file (and can be told to fail),
so each test can see exactly which server got which version and in which order; the end-to-end
scenario in test_pipeline.py runs the example's real deploy command against model servers that
load the registered models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcicd.lifecycle import abort_applies, busy_canary_message, gate_decision
from mlcicd.routers import Weights

from canary_rig import LoadGenerator, haproxy, http_router, model_servers, prometheus
from conftest import assert_one_clear_error, parse_outputs
from test_canary_shift import Rig, http_args, report_of, version_tags

DEPLOY = 'echo "$DEPLOY_TARGET $MODEL_URI" >> deploys.log; [ "$DEPLOY_TARGET" != "${FAIL_TARGET:-none}" ]'


# --- decisions ------------------------------------------------------------------------------------


def test_gate_decision():
    assert gate_decision("true", force=False, reason="", name="m", version="3").allowed
    refused = gate_decision("false", force=False, reason="", name="m", version="3")
    assert not refused.allowed and "`false`" in refused.message and "force: true" in refused.message
    missing = gate_decision(None, force=False, reason="", name="m", version="3")
    assert not missing.allowed and "no check-gates verdict" in missing.message
    forced = gate_decision(None, force=True, reason="hotfix", name="m", version="3")
    assert forced.allowed and forced.override and "hotfix" in forced.message


def test_busy_canary_and_abort_requests():
    assert busy_canary_message(Weights(0), "r", None) is None
    message = busy_canary_message(
        Weights(20), "HAProxy", {"version": "4", "state": "frozen", "weight": 20, "updated": "t"}
    )
    assert "canary 20 %" in message and "version 4 `frozen`" in message and "mode: restore" in message
    assert busy_canary_message(Weights(0, shadow=100), "r", None)
    started = time.time()
    assert not abort_applies(None, started)
    assert not abort_applies(
        {"requested": "2020-01-01T00:00:00+00:00"}, started
    )  # an old request: not this rollout's
    assert abort_applies({"requested": "2999-01-01T00:00:00+00:00"}, started)
    assert not abort_applies({"requested": "yesterday"}, started)


# --- against the rig ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("lifecycle-rig")
    with (
        model_servers(root, delay_ms=5) as servers,
        haproxy(root, *servers, check=True) as lb,
        prometheus(root, list(servers)) as prom,
    ):
        yield Rig(servers, lb, prom, root)


@pytest.fixture
def live(rig, tmp_path) -> Iterator[tuple[Rig, LoadGenerator]]:
    rig.reset()
    rig.root = tmp_path  # deploys.log and reports per test
    with LoadGenerator(rig.lb.url, rate=250, threads=6) as load:
        yield rig, load
    rig.reset()


def registry(home: Path):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    return MlflowClient()


@pytest.fixture
def versions(embedded_home) -> Iterator[tuple[str, object]]:
    """`churn` versions 1 and 2, both gated; version 3 without a verdict. Yields (name, client)."""
    import mlflow

    client = registry(embedded_home)
    try:
        client.create_registered_model("churn")
        for _ in range(3):
            client.create_model_version("churn", source=str(embedded_home), run_id=None)
        for version in ("1", "2"):
            client.set_model_version_tag("churn", version, "mlcicd.gates.passed", "true")
        yield "churn", client
    finally:
        mlflow.set_tracking_uri(None)


def deploys(rig: Rig) -> list[str]:
    path = rig.root / "deploys.log"
    return path.read_text().splitlines() if path.exists() else []


def history(client, name: str) -> list[dict]:
    from mlcicd.history import read_history

    return read_history(dict(client.get_registered_model(name).tags))


def rollout_record(client, name: str) -> dict:
    return json.loads(client.get_registered_model(name).tags["mlcicd.rollout"])


def test_handoff_puts_the_version_on_stable_and_leaves_the_canary_empty(live, versions, run_cli):
    rig, load = live
    name, client = versions
    result = run_cli(
        "canary-shift",
        *rig.args("--model-name", name, "--version", "2", "--deploy-command", DEPLOY),
        cwd=rig.root,
    )
    assert result.rc == 0, result.log
    assert (
        result.outputs["result"] == "promoted"
        and result.outputs["final-weight"] == "0"
        and result.outputs["version"] == "2"
    )
    assert deploys(rig) == [
        "canary models:/churn/2",
        "stable models:/churn/2",
    ]  # canary first, stable at the handoff
    assert rig.lb.weights() == {"stable": 100, "canary": 0}
    report = report_of(result, rig.root)
    assert [s["weight"] for s in report["steps"]] == [20, 50, 100, 0]
    time.sleep(1)
    assert load.split(time.time() - 0.8).get("canary", 0) == 0  # the canary carries nothing after the handoff
    assert version_tags(rig_home(client), name, "2")["mlcicd.canary.state"] == "promoted"
    record = rollout_record(client, name)
    assert record["state"] == "promoted" and record["stable"] == "2" and record["weight"] == 0
    events = history(client, name)
    assert (
        events[-1]["alias"] == "traffic"
        and events[-1]["mode"] == "rollout promoted"
        and events[-1]["to"] == "2"
    )


def rig_home(client) -> Path:
    return Path(client.tracking_uri.removeprefix("sqlite:///")).parent


def test_a_version_without_a_passed_verdict_moves_no_traffic_unless_forced_with_a_reason(
    live, versions, run_cli
):
    rig, load = live
    name, client = versions
    args = rig.args("--model-name", name, "--version", "3", "--deploy-command", DEPLOY)
    refused = run_cli("canary-shift", *args, cwd=rig.root)
    assert refused.rc == 1 and refused.outputs["result"] == "refused", refused.log
    assert (
        len(refused.errors) == 1
        and "has not passed the quality gates" in refused.errors[0]
        and "force: true" in refused.errors[0]
    )
    assert deploys(rig) == [] and rig.lb.weights() == {"stable": 100, "canary": 0}
    assert_one_clear_error(run_cli("canary-shift", *args, "--force", "true", cwd=rig.root), "force", "reason")

    forced = run_cli("canary-shift", *args, "--force", "true", "--reason", "INC-7 hotfix", cwd=rig.root)
    assert forced.rc == 0 and forced.outputs["result"] == "promoted", forced.log
    assert "gates overridden" in forced.stdout
    override = next(e for e in history(client, name) if e["mode"].startswith("forced rollout"))
    assert override["reason"] == "INC-7 hotfix" and override["to"] == "3" and override["actor"]


def test_a_canary_with_traffic_is_refused_before_the_deploy_command_runs(live, versions, run_cli):
    rig, load = live
    name, _ = versions
    rig.lb.set_weight("canary", 30)  # a rollout frozen half way, or never cleaned up
    result = run_cli(
        "canary-shift",
        *rig.args("--model-name", name, "--version", "2", "--deploy-command", DEPLOY),
        cwd=rig.root,
    )
    assert_one_clear_error(result, "canary already has traffic", "canary 23.0769 %", "mode: restore")
    assert deploys(rig) == [] and rig.lb.weights() == {"stable": 100, "canary": 30}


def test_a_failed_handoff_keeps_the_judged_canary_serving(live, versions, run_cli):
    rig, load = live
    name, client = versions
    args = rig.args("--model-name", name, "--version", "2", "--deploy-command", DEPLOY)
    result = run_cli("canary-shift", *args, env={"FAIL_TARGET": "stable"}, cwd=rig.root)
    assert result.rc == 1 and result.outputs["result"] == "handoff-failed", result.log
    assert (
        len(result.errors) == 1
        and "handoff to stable failed" in result.errors[0]
        and "exited with 1" in result.errors[0]
    )
    assert rig.canary_weight() == 100  # not back onto a stable server whose deploy failed
    assert rollout_record(client, name)["state"] == "handoff-failed"

    # The health checks say so too: a stable server that HAProxy sees down is not handed traffic.
    rig.lb.set_weight("canary", 0)
    rig.lb.set_weight("stable", 100)
    rig.servers.stable.process.stop()
    try:
        # Judged on the canary's own figures: a stable server that is down has none to compare with.
        result = run_cli(
            "canary-shift", *args, "--judge", "threshold", cwd=rig.root, env={"FAIL_TARGET": "none"}
        )
        assert result.outputs["result"] == "handoff-failed", result.log
        assert "health checks see model/stable as stopped" in result.errors[0]
        assert rig.canary_weight() == 100
    finally:
        rig.servers.stable.process.restart()
        rig.lb.set_weight("stable", 100)
        rig.lb.set_weight("canary", 0)


def start(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_")}
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "out"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "mlcicd", "canary-shift", *args],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for_weight(rig: Rig, proc: subprocess.Popen, weight: float) -> None:
    deadline = time.monotonic() + 60
    while rig.canary_weight() != weight:
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stdout.read() if proc.poll() is not None else "timeout"
        )
        time.sleep(0.1)


def test_abort_stops_a_running_rollout_through_the_registry(live, versions, run_cli):
    rig, load = live
    name, client = versions
    # A long first step: the abort must arrive while the rollout runs, however slowly this machine starts a process.
    proc = start(
        rig.args("--model-name", name, "--version", "2", "--interval", "45s", "--deploy-command", DEPLOY),
        rig.root,
    )
    try:
        wait_for_weight(rig, proc, 20)
        aborted = run_cli(
            "canary-shift",
            *rig.args("--mode", "abort", "--model-name", name, "--reason", "bad dashboards"),
            cwd=rig.root,
        )
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert aborted.rc == 0 and aborted.outputs["result"] == "aborted", aborted.log
    assert "saw the abort" in aborted.stdout, out
    assert proc.returncode == 1 and "aborted at canary 20 %" in out and "bad dashboards" in out, out
    assert rig.lb.weights() == {"stable": 100, "canary": 0}
    assert rollout_record(client, name)["state"] == "aborted"
    assert history(client, name)[-1]["mode"] == "rollout aborted"
    assert (
        "mlcicd.rollout.abort" not in client.get_registered_model(name).tags
    )  # honoured, so it cannot stop the next one


def test_weights_lost_by_a_router_reload_are_set_again(live, versions, run_cli):
    rig, load = live
    name, _ = versions
    proc = start(rig.args("--model-name", name, "--version", "2", "--interval", "4s"), rig.root)
    try:
        wait_for_weight(rig, proc, 20)
        rig.lb.kill()
        rig.lb.restart()  # back to the config's weights: stable 100, canary 0
        out, _ = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "router weights changed behind the rollout" in out and "server-state-file" in out
    assert parse_outputs((rig.root / "out").read_text())["result"] == "promoted"


def test_rollback_puts_previous_production_on_stable(live, versions, run_cli):
    rig, load = live
    name, client = versions
    client.set_registered_model_alias(name, "previous-production", "1")
    client.set_registered_model_alias(name, "production", "2")
    refused = run_cli("canary-shift", *rig.args("--mode", "rollback", "--model-name", name), cwd=rig.root)
    assert_one_clear_error(refused, "deploy-command")

    result = run_cli(
        "canary-shift",
        *rig.args("--mode", "rollback", "--model-name", name, "--deploy-command", DEPLOY),
        cwd=rig.root,
    )
    assert (
        result.rc == 0 and result.outputs["result"] == "rolled-back" and result.outputs["version"] == "1"
    ), result.log
    assert deploys(rig) == ["canary models:/churn/1", "stable models:/churn/1"]
    assert rig.lb.weights() == {"stable": 100, "canary": 0}
    assert rollout_record(client, name)["stable"] == "1"
    event = history(client, name)[-1]
    assert event["mode"] == "rollback" and event["from"] == "2" and event["to"] == "1"

    client.delete_registered_model_alias(name, "previous-production")
    nothing = run_cli(
        "canary-shift",
        *rig.args("--mode", "rollback", "--model-name", name, "--deploy-command", DEPLOY),
        cwd=rig.root,
    )
    assert (
        nothing.rc == 1
        and "cannot roll back" in nothing.errors[0]
        and "previous-production` is not set" in nothing.errors[0]
    )


@pytest.mark.parametrize("strategy", ["shadow", "blue-green"])
def test_the_http_router_hands_over_after_shadow_and_blue_green(strategy, versions, tmp_path, run_cli):
    """The handoff does not depend on the router or the strategy: the plan ends at 100 %, stable gets
    the version, and the weights document goes back to all-stable with no mirror."""
    name, client = versions
    extra = ("--steps", "") if strategy == "shadow" else ("--judge", "threshold")
    with model_servers(tmp_path) as servers, http_router(tmp_path, *servers) as router:
        with LoadGenerator(router.url, rate=150, threads=4):
            args = http_args(router, "--strategy", strategy, "--latency-tolerance", "1", *extra)
            result = run_cli(
                "canary-shift",
                *args,
                "--model-name",
                name,
                "--version",
                "2",
                "--deploy-command",
                DEPLOY,
                cwd=tmp_path,
            )
        assert result.rc == 0 and result.outputs["result"] == "promoted", result.log
        assert router.weights() == {"canary": 0.0, "stable": 1.0, "shadow": 0.0}
    assert (tmp_path / "deploys.log").read_text().splitlines() == [
        "canary models:/churn/2",
        "stable models:/churn/2",
    ]
    assert rollout_record(client, name)["stable"] == "2"

"""canary-shift against real routers and a real metrics source on loopback.

HAProxy (runtime API) fronts two model servers that expose a Prometheus histogram; a real
Prometheus scrapes them every second; a load generator sends bounded traffic and records which
variant answered, so each step's real split is checked against the weight. The `http` router and
metrics contracts run against tests/fixtures/http_router.py, a reference implementation of them.
Intervals are seconds here instead of minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlcicd.config import build_settings, duration
from mlcicd.errors import UsageError
from mlcicd.stages.canary_shift import DEFAULT_STEPS, PlanOptions, per_test_alpha, steps_list
from mlcicd.stages.canary_shift import make_plan as plan_of

from canary_rig import (
    HAProxy,
    HttpRouter,
    LoadGenerator,
    ModelServers,
    Prometheus,
    haproxy,
    http_router,
    model_servers,
    prometheus,
)
from conftest import assert_one_clear_error, parse_outputs
from test_actions import act_self_test


def make_plan(values):  # the plan options as a test writes them
    return plan_of(build_settings(PlanOptions, values))


PLAN_DEFAULTS = {"strategy": "canary", "steps": (), "step-weight": 0, "max-weight": 50}


def plan(**values):
    return [(w.canary, w.shadow) for w in make_plan({**PLAN_DEFAULTS, **values})]


def test_alpha_is_the_budget_of_the_whole_rollout():
    three_steps = make_plan(PLAN_DEFAULTS)  # 5, 25, 50 judged, then 100
    assert per_test_alpha(0.01, three_steps, "both") == pytest.approx(0.01 / 12)
    assert per_test_alpha(0.01, three_steps, "statistical") == pytest.approx(0.01 / 6)
    assert per_test_alpha(
        0.01, make_plan({**PLAN_DEFAULTS, "strategy": "blue-green"}), "threshold"
    ) == pytest.approx(0.005)


def test_plans_of_each_strategy():
    assert plan() == [(w, 0) for w in DEFAULT_STEPS]
    assert plan(steps=(10, 40)) == [(10, 0), (40, 0), (100, 0)]  # the switch to 100 is added
    assert plan(strategy="linear") == [(10, 0), (20, 0), (30, 0), (40, 0), (50, 0), (100, 0)]
    assert plan(strategy="linear", **{"step-weight": 30, "max-weight": 100}) == [
        (30, 0),
        (60, 0),
        (90, 0),
        (100, 0),
    ]
    assert plan(**{"step-weight": 25}) == [(25, 0), (50, 0), (100, 0)]
    assert plan(strategy="blue-green") == [(5, 0), (100, 0)]
    assert plan(strategy="blue-green", steps=(20,)) == [(20, 0), (100, 0)]
    assert plan(strategy="shadow") == [(0, 100), (100, 0)]


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"steps": (10, 50), "step-weight": 10}, "not both"),
        ({"strategy": "linear", "steps": (10, 50)}, "strategy canary"),
        ({"strategy": "blue-green", "steps": (10, 50)}, "one warm-up share"),
        ({"strategy": "shadow", "steps": (10,)}, "shadow"),
        ({"strategy": "linear", "step-weight": 60, "max-weight": 50}, "above max-weight"),
    ],
)
def test_plan_conflicts_are_usage_errors(values, needle):
    with pytest.raises(UsageError) as error:
        make_plan({**PLAN_DEFAULTS, **values})
    assert needle in error.value.message


def test_option_parsers():
    assert steps_list("5, 25,50%,100") == (5, 25, 50, 100)
    assert steps_list([10, 20]) == (10, 20)
    assert steps_list("") == ()
    for bad in ("5,3", "0,50", "5,150", "5,x", "2.5,10"):
        with pytest.raises(ValueError):
            steps_list(bad)
    assert (
        duration("30s") == 30
        and duration("5m") == 300
        and duration("1h") == 3600
        and duration("250ms") == 0.25
        and duration(2) == 2
    )
    for bad in ("-5m", "0s", "5 minutes", "", True):
        with pytest.raises(ValueError):
            duration(bad)


HAPROXY = "{type: haproxy, address: '127.0.0.1:1', backend: model}"
PROMETHEUS = "{type: prometheus, address: 'http://127.0.0.1:1'}"


@pytest.mark.parametrize(
    "args, needles",
    [
        ([], ["missing router"]),
        (["--router", "{type: nginx, address: x}"], ["router.type", "http, haproxy"]),
        (
            ["--router", "{type: haproxy, address: '127.0.0.1:1', backnd: model}"],
            ["router.backnd", "did you mean `backend`"],
        ),
        (
            ["--router", "{type: haproxy, address: '127.0.0.1:1', route: model}"],
            ["router.route", "only the http router"],
        ),
        (["--router", "{type: haproxy, address: '127.0.0.1:1'}"], ["needs `backend`"]),
        (["--router", "{type: http, address: 'lb:80', route: m}"], ["http:// or https://"]),
        (["--router", "[1, 2"], ["router", "YAML mapping"]),
        (["--router", HAPROXY], ["missing metrics"]),
        (
            ["--router", HAPROXY, "--metrics", "{type: prometheus, address: 'http://p', queries: {p99: x}}"],
            ["metrics.queries.p99"],
        ),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--steps", "50,20"], ["steps", "must increase"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--interval=-1m"], ["interval", "30s"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--strategy", "shadow"], ["cannot mirror"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS, "--model-name", "churn"], ["model-name and version"]),
        (["--router", HAPROXY, "--metrics", PROMETHEUS], ["router unreachable", "nothing was changed"]),
    ],
)
def test_bad_input_is_one_clear_error(run_cli, args, needles):
    assert_one_clear_error(run_cli("canary-shift", "--interval", "1s", *args), *needles)


def test_config_section_is_checked_strictly(run_cli, tmp_path):
    (tmp_path / "mlcicd.yaml").write_text(
        "canary-shift:\n  router:\n    type: haproxy\n    adress: 127.0.0.1:9999\n    backend: model\n"
    )
    assert_one_clear_error(
        run_cli("canary-shift", cwd=tmp_path), "router.adress", "did you mean `address`", "mlcicd.yaml"
    )


# --- against real HAProxy, Prometheus and model servers ----------------------------------------------


@dataclass
class Rig:
    servers: ModelServers
    lb: HAProxy
    prom: Prometheus
    root: Path

    def reset(self) -> None:
        if not self.lb.process.alive:
            self.lb.restart()
        self.lb.set_weight("canary", 0)
        self.lb.set_weight("stable", 100)
        for server in self.servers:
            server.set_fault(error_rate=0.0, delay_ms=0.0)

    def args(self, *extra: str, metrics: str | None = None) -> list[str]:
        return [
            "--router", f"{{type: haproxy, address: '{self.lb.admin_address}', backend: model}}",
            "--metrics", metrics or f"{{type: prometheus, address: '{self.prom.url}'}}",
            "--interval", "3s", "--min-requests", "20", "--steps", "20,50", *extra,
        ]  # fmt: skip

    def canary_weight(self) -> float:
        weights = self.lb.weights()
        return 100 * weights["canary"] / (weights["canary"] + weights["stable"])


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("canary-rig")
    with (
        model_servers(root, delay_ms=5) as servers,
        haproxy(root, *servers) as lb,
        prometheus(root, list(servers)) as prom,
    ):
        yield Rig(servers, lb, prom, root)


@pytest.fixture
def live(rig) -> Iterator[tuple[Rig, LoadGenerator]]:
    rig.reset()
    with LoadGenerator(rig.lb.url, rate=250, threads=6) as load:
        yield rig, load
    rig.reset()


@pytest.fixture
def model_version(embedded_home) -> tuple[str, str]:
    """A registered model `churn` with one version, in this test's embedded registry."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{embedded_home / 'mlflow.db'}")
    try:
        client = MlflowClient()
        client.create_registered_model("churn")
        version = client.create_model_version("churn", source=str(embedded_home), run_id=None)
        client.set_model_version_tag(
            "churn", version.version, "mlcicd.gates.passed", "true"
        )  # what check-gates records
        return "churn", str(version.version)
    finally:
        mlflow.set_tracking_uri(None)


def version_tags(home: Path, name: str, version: str) -> dict[str, str]:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    try:
        return dict(MlflowClient().get_model_version(name, version).tags)
    finally:
        mlflow.set_tracking_uri(None)


def report_of(result, cwd: Path) -> dict:
    return json.loads((cwd / result.outputs["report"]).read_text())


def assert_split_matches_weights(report: dict, load: LoadGenerator) -> None:
    """The requests each backend really served during a step match the step's weight."""
    for step in report["steps"]:
        if step["ended"] is None or step["weight"] >= 100:
            continue
        # Skip the first half second: requests in flight when the weight changed.
        split = load.split(step["started"] + 0.5, step["ended"])
        served = split.get("stable", 0) + split.get("canary", 0)
        assert served > 100, (step, split)
        share = split.get("canary", 0) / served
        assert abs(share - step["weight"] / 100) < 0.05, (step["weight"], split)


def test_healthy_canary_reaches_100_percent(live, model_version, embedded_home, run_cli):
    rig, load = live
    name, version = model_version
    # Both servers share this machine's cores with the other tests, so one interval's p99 can differ by
    # a scheduler's hiccup; a second failed check is what a real regression would also bring.
    result = run_cli(
        "canary-shift",
        *rig.args("--model-name", name, "--version", version, "--failure-limit", "2"),
        cwd=rig.root,
    )
    assert result.rc == 0, result.log
    assert result.outputs["result"] == "promoted" and result.outputs["final-weight"] == "100"
    assert rig.canary_weight() == 100
    report = report_of(result, rig.root)
    assert [s["weight"] for s in report["steps"]] == [20, 50, 100]
    assert all(
        c["verdict"] == "pass" for s in report["steps"] for c in s["checks"] if c["counted_as"] == "pass"
    )
    assert_split_matches_weights(report, load)
    tags = version_tags(embedded_home, name, version)
    assert tags["mlcicd.canary.state"] == "promoted" and tags["mlcicd.canary.weight"] == "100"
    assert "| 20 % |" in result.summary and "xychart-beta" in result.summary
    assert not result.errors


def test_canary_with_errors_is_rolled_back(live, model_version, embedded_home, run_cli):
    rig, load = live
    rig.servers.canary.set_fault(error_rate=0.05)
    name, version = model_version
    # 4 s at 20 %: about 200 canary requests, 10 errors; 5 % against stable's 0 % fails the first check
    # but for a draw of 3 errors or fewer (~1 %), and then the 50 % step fails.
    result = run_cli(
        "canary-shift",
        *rig.args("--model-name", name, "--version", version, "--interval", "4s"),
        cwd=rig.root,
    )
    assert result.rc == 1, result.log
    assert result.outputs["result"] == "rolled-back" and result.outputs["final-weight"] == "0"
    assert rig.canary_weight() == 0
    assert len(result.errors) == 1 and "error rate" in result.errors[0]
    report = report_of(result, rig.root)
    assert (
        report["steps"][-1]["weight"] in (20, 50) and report["steps"][-1]["checks"][-1]["verdict"] == "fail"
    )
    assert_split_matches_weights(report, load)
    assert version_tags(embedded_home, name, version)["mlcicd.canary.state"] == "rolled-back"
    # After the rollback the canary gets nothing.
    time.sleep(1)
    assert load.split(time.time() - 0.8).get("canary", 0) == 0


def test_slow_canary_is_rolled_back_by_the_comparison(live, run_cli):
    rig, load = live
    rig.servers.stable.set_fault(delay_ms=5)
    rig.servers.canary.set_fault(delay_ms=25)  # 3x stable's 10 ms, far below the absolute 150 ms limit
    result = run_cli("canary-shift", *rig.args("--judge", "both"), cwd=rig.root)
    assert result.rc == 1, result.log
    assert result.outputs["result"] == "rolled-back"
    check = report_of(result, rig.root)["steps"][-1]["checks"][-1]
    assert any(
        f["judge"] == "statistical" and f["metric"] == "p99" and f["verdict"] == "fail"
        for f in check["findings"]
    ), check
    assert not any(f["judge"] == "threshold" and f["verdict"] == "fail" for f in check["findings"]), check
    assert rig.canary_weight() == 0


def test_freeze_keeps_the_weight_and_the_restore_mode_undoes_it(live, run_cli):
    rig, load = live
    rig.servers.canary.set_fault(error_rate=0.2)
    result = run_cli("canary-shift", *rig.args("--on-failure", "freeze"), cwd=rig.root)
    assert result.rc == 1 and result.outputs["result"] == "frozen", result.log
    assert rig.canary_weight() == 20 and result.outputs["final-weight"] == "20"
    assert "mode: restore" in result.errors[0]
    restored = run_cli("canary-shift", *rig.args("--mode", "restore"), cwd=rig.root)
    assert restored.rc == 0 and restored.outputs["result"] == "rolled-back", restored.log
    assert rig.canary_weight() == 0


def test_no_metrics_is_inconclusive_then_rolled_back_never_promoted(live, tmp_path, run_cli):
    rig, load = live
    with prometheus(tmp_path) as empty:  # scrapes nothing: every query is empty
        result = run_cli(
            "canary-shift", *rig.args("--interval", "1s", "--max-inconclusive", "2", metrics=f"{{type: prometheus, address: '{empty.url}'}}"),
            cwd=rig.root,
        )  # fmt: skip
    assert result.rc == 1 and result.outputs["result"] == "rolled-back", result.log
    checks = report_of(result, rig.root)["steps"][0]["checks"]
    assert [c["counted_as"] for c in checks] == ["inconclusive", "fail (inconclusive)"]
    assert "2 inconclusive checks in a row" in result.errors[0]
    assert rig.canary_weight() == 0


def test_metrics_source_down_mid_shift_is_inconclusive_then_rolled_back(live, tmp_path):
    rig, load = live
    with prometheus(tmp_path, list(rig.servers)) as prom:
        args = rig.args(
            "--interval",
            "2s",
            "--max-inconclusive",
            "2",
            "--report",
            str(tmp_path / "r.json"),
            metrics=f"{{type: prometheus, address: '{prom.url}'}}",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlcicd", "canary-shift", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while rig.canary_weight() != 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        prom.process.kill()  # Prometheus dies after the preflight, once traffic has moved
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    checks = json.loads((tmp_path / "r.json").read_text())["steps"][0]["checks"]
    assert [c["counted_as"] for c in checks] == ["inconclusive", "fail (inconclusive)"], checks
    assert "gave no answer" in checks[0]["reasons"][0]
    assert rig.canary_weight() == 0  # never promoted on no data


def test_cancelled_job_restores_stable_before_exit(live, model_version, embedded_home, tmp_path):
    rig, load = live
    name, version = model_version
    env = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_")}
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "out"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
    )
    args = rig.args(
        "--interval",
        "30s",
        "--model-name",
        name,
        "--version",
        version,
        "--report",
        str(tmp_path / "report.json"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcicd", "canary-shift", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while rig.canary_weight() != 20:
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stdout.read() if proc.poll() is not None else "timeout"
        )
        time.sleep(0.1)
    time.sleep(1)
    assert load.canary_share(time.time() - 0.8) > 0.1  # the canary really serves traffic now
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert rig.canary_weight() == 0
    assert [line for line in out.splitlines() if line.startswith("::error")] == [
        "::error title=canary-shift%3A cancelled::interrupted: the job was cancelled mid-rollout. Traffic is back on stable (verified)."
    ]
    assert version_tags(embedded_home, name, version)["mlcicd.canary.state"] == "rolled-back"
    assert parse_outputs((tmp_path / "out").read_text())["result"] == "rolled-back"


def test_router_killed_mid_shift_fails_loudly_and_restore_works_once_it_is_back(live, tmp_path, run_cli):
    rig, load = live
    args = rig.args("--interval", "4s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_")}
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "out"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcicd", "canary-shift", *args, "--report", str(tmp_path / "r.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while rig.canary_weight() != 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    rig.lb.kill()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "traffic state unknown" in errors[0] and "mode: restore" in errors[0], out
    outputs = parse_outputs((tmp_path / "out").read_text())
    assert (
        outputs["traffic-changed"] == "true" and "result" not in outputs
    )  # the action's restore step runs on this
    # While the router is down, restore cannot do anything and says so.
    down = run_cli("canary-shift", *rig.args("--mode", "restore"), cwd=rig.root)
    assert_one_clear_error(down, "router unreachable")
    rig.lb.restart()
    rig.lb.set_weight("canary", 20)  # as if its state had survived (server-state-file)
    rig.lb.set_weight("stable", 80)
    restored = run_cli("canary-shift", *rig.args("--mode", "restore"), cwd=rig.root)
    assert restored.rc == 0 and restored.outputs["result"] == "rolled-back", restored.log
    assert rig.canary_weight() == 0


def test_dry_run_changes_nothing(live, run_cli):
    rig, load = live
    result = run_cli("canary-shift", *rig.args("--dry-run", "true"), cwd=rig.root)
    assert result.rc == 0 and result.outputs["result"] == "dry-run", result.log
    assert rig.canary_weight() == 0 and "traffic-changed" not in result.outputs
    assert "canary 20 %" in report_of(result, rig.root)["message"]


def test_invalid_promql_is_a_usage_error_before_any_change(live, run_cli):
    rig, load = live
    metrics = f"{{type: prometheus, address: '{rig.prom.url}', queries: {{requests: 'sum(rate(x{{{{v=\"{{variant}}\"}}}}[{{window}}]'}}}}"
    assert_one_clear_error(
        run_cli("canary-shift", *rig.args(metrics=metrics), cwd=rig.root),
        "invalid metrics query",
        "nothing was changed",
    )
    assert rig.canary_weight() == 0


@pytest.fixture
def trickle(rig) -> Iterator[tuple[Rig, LoadGenerator]]:
    """The issue-18 traffic: 120 requests/s in all, so a 5 % step gets about 6 canary requests a second."""
    rig.reset()
    with LoadGenerator(rig.lb.url, rate=120, threads=4) as load:
        yield rig, load
    rig.reset()


def sequential_args(rig: Rig, *extra: str) -> list[str]:
    return [*rig.args("--judge", "sequential", "--poll", "2s", "--steps", "5"), *extra]


def test_sequential_rolls_back_5_percent_errors_at_6_requests_a_second_within_the_first_interval(
    trickle, run_cli
):
    rig, load = trickle
    rig.servers.canary.set_fault(error_rate=0.05)
    # Expected counts cross the bound after ~30 s (about 9 errors in 180 canary requests against none in 3,400);
    # a fixed-interval judge would look for the first time at 90 s, the sequential judge's test at the end too.
    result = run_cli("canary-shift", *sequential_args(rig, "--interval", "90s"), cwd=rig.root)
    assert result.rc == 1 and result.outputs["result"] == "rolled-back", result.log
    assert rig.canary_weight() == 0 and len(result.errors) == 1 and "error rate" in result.errors[0]
    report = report_of(result, rig.root)
    step = report["steps"][0]
    decided = step["checks"][-1]
    assert decided["counted_as"] == "fail" and decided["window_s"] < 90, decided
    assert all(c["counted_as"] == "watching" for c in step["checks"][:-1])  # every poll is in the report
    evidence = next(
        f["evidence"]
        for f in decided["findings"]
        if f["metric"] == "error rate" and f["judge"] == "sequential"
    )
    assert evidence["decision"] == "worse" and evidence["lower"] > report["limits"]["error_rate_tolerance"]
    assert (
        report["poll_s"] == 2 and report["sizing"]["rate_per_s"] > 0
    )  # measured before the rollout (the load only just began)
    assert "Sequential judge, error rate" in result.summary and "Traffic sizing" in result.summary


def test_sequential_promotes_a_healthy_canary_at_the_interval(trickle, run_cli):
    rig, load = trickle
    # At 5 % of 120 requests/s the canary server idles between requests and, on this shared machine, can
    # answer its few requests measurably slower than the busy stable one (p99 21.7 ms against 10.0 ms in
    # one CI run). This test is about the error-rate test's timing; latency has tests of its own.
    result = run_cli(
        "canary-shift", *sequential_args(rig, "--interval", "8s", "--latency-tolerance", "1"), cwd=rig.root
    )
    assert result.rc == 0 and result.outputs["result"] == "promoted", result.log
    checks = report_of(result, rig.root)["steps"][0]["checks"]
    assert checks[-1]["counted_as"] == "pass" and checks[-1]["window_s"] >= 8, result.log
    assert rig.canary_weight() == 100 and not result.errors


# --- the http router and metrics contracts -------------------------------------------------------------


def http_args(router: HttpRouter, *extra: str) -> list[str]:
    return [
        "--router", f"{{type: http, address: '{router.url}', route: {router.route}}}",
        "--metrics", f"{{type: http, address: '{router.url}/metrics/summary'}}",
        "--interval", "2s", "--min-requests", "20", "--steps", "30", *extra,
    ]  # fmt: skip


def test_http_router_shadow_mirrors_then_switches(tmp_path, run_cli):
    # The reference router times mirrored copies on its own worker threads, which a loaded 2-core
    # machine slows down more than the routed requests: a wide latency band keeps this test about
    # the mirroring, not about the router's thread scheduling.
    with model_servers(tmp_path) as servers, http_router(tmp_path, *servers, token="s3cret-token") as router:
        with LoadGenerator(router.url, rate=150, threads=4) as load:
            result = run_cli(
                "canary-shift",
                *http_args(router, "--steps", "", "--strategy", "shadow", "--latency-tolerance", "1"),
                env={"MLCICD_ROUTER_TOKEN": "s3cret-token"},
                cwd=tmp_path,
            )
        assert result.rc == 0 and result.outputs["result"] == "promoted", result.log
        assert router.weights() == {"canary": 1.0, "stable": 0.0, "shadow": 0.0}
        report = report_of(result, tmp_path)
        shadow_step = report["steps"][0]
        assert shadow_step["shadow"] == 100 and report["judge"] == "statistical"
        # While mirroring, users were answered by stable only, and the canary saw copies.
        # Half a second off both ends: a request sent as the switch to 100 % lands may be answered by the canary.
        assert load.split(shadow_step["started"] + 0.5, shadow_step["ended"] - 0.5).get("canary", 0) == 0
        assert shadow_step["checks"][-1]["canary"]["requests"] >= 20
        # Masked first (the runner hides it from then on), and never written anywhere else.
        assert result.stdout.splitlines()[0] == "::add-mask::s3cret-token"
        assert not [
            line
            for line in result.log.splitlines()
            if "s3cret-token" in line and not line.startswith("::add-mask::")
        ]
        assert "s3cret-token" not in json.dumps(report) and "s3cret-token" not in result.summary


def test_http_router_retries_and_verifies(tmp_path, run_cli):
    with model_servers(tmp_path) as servers:
        with (
            http_router(tmp_path, *servers, "--fail-puts", "2") as router,
            LoadGenerator(router.url, rate=150, threads=4),
        ):
            result = run_cli(
                "canary-shift",
                *http_args(router, "--judge", "threshold", "--strategy", "blue-green"),
                cwd=tmp_path,
            )
            assert result.rc == 0 and result.outputs["result"] == "promoted", result.log
            assert [s["weight"] for s in report_of(result, tmp_path)["steps"]] == [
                30,
                100,
            ]  # warm-up share, then the switch
        with http_router(tmp_path, *servers, "--ignore-puts") as router:
            result = run_cli("canary-shift", *http_args(router), cwd=tmp_path)
            assert result.rc == 1 and result.outputs["result"] == "rolled-back", result.log
            assert "reads back canary 0 %" in result.errors[0]


@pytest.mark.act
def test_canary_shift_action(tmp_path):
    with (
        model_servers(tmp_path) as servers,
        http_router(tmp_path, *servers) as router,
        LoadGenerator(router.url, rate=150, threads=4),
    ):
        log = act_self_test(
            "tests/workflows/canary-shift.yml",
            MLCICD_TEST_ROUTER=router.url,
            MLCICD_TEST_CANARY=servers.canary.url,
        )
    assert "healthy: promoted 100" in log and "frozen: failure frozen 30" in log
    assert "::error title=canary-shift%3A frozen" in log

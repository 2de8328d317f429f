"""End to end: the example consumer repository's workflow, run by act, against this checkout.

`examples/` is copied to a temporary git repository with generated data, and its
`.github/workflows/ml.yml` runs through act in host mode with this checkout as `org/ml-cicd@v1`:
train.yml (validate → train on CPU → gates → @staging) then deploy.yml (serve check → canary on
a real HAProxy fronting two model servers under load, judged on a real Prometheus → @production).
Each scenario asserts on the registry through MLflow's own client, not on log text alone. The
scenarios build on each other in order, as a repository's history would, on one registry and one
serving stack: v1 and then v2 reach production and are handed over to the stable server; a bad v3
is rolled back; a version whose gates failed is refused at deploy; the operations workflow
(ops.yml) rolls production back to v1. After each, the aliases, the history, the HAProxy weights
and the model each server serves (asked from the server) are checked, and the live requests
outside the judged canary share never saw an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from canary_rig import HAProxy, LoadGenerator, ModelServers
from conftest import ROOT, load_example_generator
from demo import MODEL, STABLE_IS_A_RULE, Act, deploy_command, git, prepare_consumer, registry, serving_layer

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from github_api import FakeGitHub

pytestmark = pytest.mark.act


@dataclass
class Consumer:
    repo: Path
    home: Path
    act: Act
    servers: ModelServers
    lb: HAProxy
    load: LoadGenerator

    def commit(self, message: str) -> None:
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-qm", message)

    def run(self, event: str, *args: str, workflow: str = "ml.yml") -> tuple[int, str]:
        proc = self.act.run(event, *args, workflow=workflow)
        return proc.returncode, proc.stdout + proc.stderr

    def registry(self) -> tuple[dict[str, str], list[str]]:
        return registry(self.home)

    def canary_weight(self) -> float:
        weights = self.lb.weights()
        return 100 * weights["canary"] / (weights["canary"] + weights["stable"])

    def served(self) -> dict[str, str]:
        """The model each server says it serves ('' for the constant rule of before the first model)."""
        return {server.variant: server.model_uri() for server in self.servers}

    def traffic_events(self) -> list[tuple[str, str | None, str | None]]:
        """(mode, from, to) of the `alias: traffic` events in the model's history."""
        import mlflow
        from mlflow import MlflowClient

        from mlcicd.history import read_history

        mlflow.set_tracking_uri(f"sqlite:///{self.home / 'mlflow.db'}")
        try:
            events = read_history(dict(MlflowClient().get_registered_model(MODEL).tags))
        finally:
            mlflow.set_tracking_uri(None)
        return [(e["mode"], e["from"], e["to"]) for e in events if e.get("alias") == "traffic"]

    def assert_at_rest(self, production: str) -> None:
        """After any rollout: stable serves @production, the canary carries nothing, and no request
        that stable answered failed."""
        assert self.lb.weights() == {"stable": 100, "canary": 0}
        assert self.servers.stable.model_uri() == f"models:/{MODEL}/{production}"
        assert self.registry()[0]["production"] == production
        errors = (
            self.load.errors()
        )  # the canary's own share is judged (and faulted on purpose once); the rest must be clean
        assert errors.get("stable", 0) == 0 and errors.get(None, 0) == 0, errors


@pytest.fixture(scope="module")
def consumer(tmp_path_factory) -> Iterator[Consumer]:
    root = tmp_path_factory.mktemp("pipeline")
    home = root / "home"
    with serving_layer(root, home, rate=200) as (servers, lb, prom, load):
        canary = {
            "steps": "20,50", "interval": "3s", "min-requests": 20, "latency-tolerance": STABLE_IS_A_RULE,
            "router": {"type": "haproxy", "address": lb.admin_address, "backend": "model"},
            "metrics": {"type": "prometheus", "address": prom.url}, "deploy-command": deploy_command(servers),
        }  # fmt: skip
        repo = prepare_consumer(root, 4000, canary)
        yield Consumer(repo, home, Act(root, repo, home, {}), servers, lb, load)


def jobs(log: str) -> dict[str, str]:
    """act's job results: {'train/validate-data': 'succeeded', ...}."""
    results = {}
    for line in log.splitlines():
        if "🏁  Job" in line and line.startswith("["):
            name = line[1 : line.index("]")].strip()
            caller, _, job = name.partition("/")
            results[f"{caller}/{job.rpartition('/')[2]}"] = "succeeded" if "succeeded" in line else "failed"
    return results


def test_push_runs_the_whole_chain_to_production(consumer):
    assert consumer.served() == {"stable": "", "canary": ""}  # the serving layer before any model
    rc, log = consumer.run("push")
    assert rc == 0, log[-8000:]
    aliases, versions = consumer.registry()
    assert versions == ["1"] and aliases == {"staging": "1", "production": "1"}
    # Handed over: v1 went onto the canary, then onto stable, which takes all traffic again.
    assert consumer.served() == {
        "stable": "models:/churn-classifier/1",
        "canary": "models:/churn-classifier/1",
    }
    consumer.assert_at_rest("1")
    assert consumer.traffic_events() == [("rollout promoted", None, "1")]
    assert "::warning title=train-gpu%3A training on CPU::" in log  # the fallback is said, not silent
    assert "ml-cicd deploy: ✅ version 1 is @production and on the stable server" in log
    # From now on stable serves a model: later rollouts compare model with model, at the default tolerance.
    config = yaml.safe_load((consumer.repo / "mlcicd.yaml").read_text())
    config["canary-shift"].pop("latency-tolerance")
    (consumer.repo / "mlcicd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    consumer.commit("judge latency against the stable model")


def test_dispatch_without_retrain_skips_training(consumer):
    rc, log = consumer.run("workflow_dispatch", "--input", "retrain=false")
    assert rc == 0, log[-8000:]
    assert "skipped: fingerprint already registered" in log
    assert jobs(log).get("deploy/canary") is None  # nothing new to roll out
    assert consumer.registry() == ({"staging": "1", "production": "1"}, ["1"])


def test_dispatch_with_retrain_trains_and_deploys_again(consumer):
    rc, log = consumer.run("workflow_dispatch", "--input", "retrain=true")
    assert rc == 0, log[-8000:]
    aliases, versions = consumer.registry()
    assert versions == ["1", "2"] and aliases == {
        "staging": "2",
        "production": "2",
        "previous-production": "1",
    }
    # The second rollout started from an empty canary and ended the same way, with v2 on stable.
    assert "canary already" not in log
    consumer.assert_at_rest("2")
    assert consumer.traffic_events()[-1] == ("rollout promoted", "1", "2")


def github_api(gh: FakeGitHub) -> tuple[str, ...]:
    """act flags that point the workflow's GitHub API calls at the stand-in, with a job token it accepts."""
    return (
        "--env",
        f"GITHUB_API_URL={gh.url}",
        "--env",
        "GITHUB_REPOSITORY=acme/churn",
        "-s",
        "GITHUB_TOKEN=good-token",
    )


def test_a_pull_request_is_gated_and_commented_on_never_promoted(consumer, tmp_path):
    with FakeGitHub() as gh:
        pr = gh.state.add_issue("Retune the schema bounds", pull_request=True)
        event = tmp_path / "pull_request.json"
        head = {
            "ref": "tune",
            "repo": {"full_name": "acme/churn"},
        }  # a branch of the repository itself, not a fork
        event.write_text(
            json.dumps({"number": pr["number"], "pull_request": {"number": pr["number"], "head": head}})
        )
        proc = consumer.act.run("pull_request", "-e", str(event), *github_api(gh))
        rc, log = proc.returncode, proc.stdout + proc.stderr
        assert rc == 0, log[-8000:]
        results = jobs(log)
        assert results["train/check-gates"] == "succeeded" and "train/promote" not in results, results
        assert results["ml/report"] == "succeeded", results
        comments = list(gh.state.comments.values())
        assert len(comments) == 1 and comments[0]["issue_number"] == pr["number"], comments
        body = comments[0]["body"]
        assert (
            "<!-- mlcicd-pr-report: churn-classifier -->" in body
            and "✅ the candidate passed the gates" in body
        ), body
        assert "### Latency (ms)" in body and "Drift: 0 feature(s) drifted." in body, body
    # Judged, not shipped: nothing registered, no alias moved.
    assert consumer.registry() == (
        {"staging": "2", "production": "2", "previous-production": "1"},
        ["1", "2"],
    )


def test_scheduled_monitor_is_quiet_when_healthy_and_dispatches_a_retrain_on_drift(consumer):
    with FakeGitHub(workflows={"ml.yml": {"retrain"}}) as gh:
        proc = consumer.act.run("schedule", *github_api(gh), workflow="monitor.yml")
        rc, log = proc.returncode, proc.stdout + proc.stderr
        assert rc == 0, log[-8000:]
        assert jobs(log) and set(jobs(log).values()) == {"succeeded"}, log[-6000:]
        assert gh.state.writes() == []

        current = consumer.repo / "data" / "current.csv"
        original = current.read_text()
        load_example_generator().customers(3000, seed=9, income_shift=0.5).to_csv(current, index=False)
        consumer.commit("customers got richer")
        proc = consumer.act.run("schedule", *github_api(gh), workflow="monitor.yml")
        rc, log = proc.returncode, proc.stdout + proc.stderr
        assert rc != 0, log[-8000:]
        dispatch = next(r for r in gh.state.writes() if r.path.endswith("/dispatches"))
        assert (
            dispatch.path == "/repos/acme/churn/actions/workflows/ml.yml/dispatches"
            and dispatch.token == "good-token"
        )
        assert dispatch.body["inputs"] == {"retrain": "true"} and dispatch.body["ref"]
        assert [i["title"] for i in gh.state.issues.values()] == ["ml-cicd monitor: churn-classifier drift"]
        # Drift alone takes nothing down.
        assert consumer.registry() == (
            {"staging": "2", "production": "2", "previous-production": "1"},
            ["1", "2"],
        )
        current.write_text(original)
        consumer.commit("back to the usual customers")


def test_drifted_data_stops_at_validate_data(consumer):
    import pandas as pd

    # validate-data checks what train.py trains on; the revert below restores it.
    pd.read_csv(consumer.repo / "data" / "defects.csv").to_parquet(
        consumer.repo / "data" / "train.parquet", index=False
    )
    consumer.commit("new batch with defects")
    rc, log = consumer.run("push")
    assert rc != 0
    results = jobs(log)
    assert results["train/validate-data"] == "failed" and "train/train-gpu" not in results, results
    assert consumer.registry() == (
        {"staging": "2", "production": "2", "previous-production": "1"},
        ["1", "2"],
    )
    git(consumer.repo, "revert", "--no-edit", "HEAD")


def test_a_bad_model_stops_at_check_gates(consumer):
    params = consumer.repo / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("lr: 0.01", "lr: 0.0"))  # an untrained network
    consumer.commit("break training")
    rc, log = consumer.run("push")
    assert rc != 0
    results = jobs(log)
    assert results["train/train-gpu"] == "succeeded" and results["train/check-gates"] == "failed", results
    assert "train/promote" not in results or results["train/promote"] != "succeeded"
    assert consumer.registry() == (
        {"staging": "2", "production": "2", "previous-production": "1"},
        ["1", "2"],
    )
    params.write_text(original)
    consumer.commit("fix training")


def test_scheduled_retrain_with_a_failing_canary_is_rolled_back(consumer):
    consumer.servers.canary.set_fault(error_rate=0.3)
    try:
        rc, log = consumer.run("schedule")
    finally:
        consumer.servers.canary.set_fault(error_rate=0.0)
    assert rc != 0
    results = jobs(log)
    assert results["deploy/canary"] == "failed" and "deploy/promote" not in results, results
    aliases, versions = consumer.registry()
    assert versions == ["1", "2", "3"]
    assert aliases == {"staging": "3", "production": "2", "previous-production": "1"}  # production unchanged
    assert "rolled back: traffic on stable, @production unchanged (2)" in log
    # Stable never stopped serving v2; the canary keeps v3 but gets nothing.
    assert consumer.served()["canary"] == "models:/churn-classifier/3"
    consumer.assert_at_rest("2")
    assert consumer.traffic_events()[-1][0] == "rollout rolled back"


def test_a_version_whose_gates_failed_is_refused_at_deploy(consumer):
    """v4 at @staging with mlcicd.gates.passed=false: ops.yml's promote mode refuses before the
    deploy command runs, and no weight changes."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{consumer.home / 'mlflow.db'}")
    try:
        client = MlflowClient()
        v3 = client.get_model_version(MODEL, "3")
        v4 = client.create_model_version(MODEL, source=v3.source, run_id=v3.run_id)
        client.set_model_version_tag(MODEL, v4.version, "mlcicd.gates.passed", "false")
        client.set_registered_model_alias(MODEL, "staging", v4.version)
    finally:
        mlflow.set_tracking_uri(None)
    rc, log = consumer.run(
        "workflow_dispatch", "--input", "mode=promote", "--input", "reason=try v4", workflow="ops.yml"
    )
    assert rc != 0
    results = jobs(log)
    assert results["ops/canary"] == "failed" and "ops/promote" not in results, results
    assert "has not passed the quality gates" in log and "⛔ refused" in log
    assert consumer.served()["canary"] == "models:/churn-classifier/3"  # the deploy command never ran
    consumer.assert_at_rest("2")


def test_the_operations_workflow_rolls_production_back_to_v1(consumer):
    rc, log = consumer.run(
        "workflow_dispatch", "--input", "mode=rollback", "--input", "reason=v2 misbehaves", workflow="ops.yml"
    )
    assert rc == 0, log[-8000:]
    results = jobs(log)
    assert results["ops/operate"] == "succeeded" and results["ops/rollback-alias"] == "succeeded", results
    aliases, _ = consumer.registry()
    assert aliases["production"] == "1" and "previous-production" not in aliases
    consumer.assert_at_rest("1")  # the alias and what stable serves agree
    assert consumer.traffic_events()[-1] == ("rollback", "2", "1")
    assert "rolled back: version 1 is on the stable server and @production" in log

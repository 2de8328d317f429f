"""Shared fixtures: the example datasets, and a runner for the real CLI with real GitHub files."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# MLflow 3's `mlflow server` starts a job runner (huey consumers in sessions of their own) that outlives
# the server it belongs to; no test uses MLflow jobs, and the runners left behind by every server a run
# starts add up to gigabytes (an xdist worker was OOM-killed).
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
EXAMPLES = ROOT / "examples"


def load_example_generator():
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def parse_outputs(text: str) -> dict[str, str]:
    """Parse a $GITHUB_OUTPUT file as the runner does: `k=v` lines and `k<<DELIM` heredocs."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heredoc = re.match(r"^([\w-]+)<<(.+)$", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        name, _, value = line.partition("=")
        outputs[name] = value
        i += 1
    return outputs


@pytest.fixture(scope="module", autouse=True)
def module_leaves_mlflow_pointing_nowhere():
    """Module fixtures point MLflow at their own stores, and mlflow.set_tracking_uri also sets
    MLFLOW_TRACKING_URI, which run_cli's subprocesses inherit: left set, the next module on the same
    xdist worker ran its stages against the previous module's store."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLCICD_HOME")}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None is MLflow's "unset"
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def run_cli(tmp_path_factory):
    """Run `python -m mlcicd ...` as Actions would: GITHUB_ACTIONS=true, real output and summary files."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 300
    ) -> Result:
        github_dir = tmp_path_factory.mktemp("github")
        out, summary = github_dir / "output", github_dir / "summary"
        out.touch()
        summary.touch()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
        full_env.update(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(summary))
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "mlcicd", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or github_dir,
            timeout=timeout,
        )
        return Result(
            proc.returncode, proc.stdout, proc.stderr, parse_outputs(out.read_text()), summary.read_text()
        )

    return run


@pytest.fixture(scope="session")
def example_data(tmp_path_factory) -> Path:
    """The example datasets (train.parquet, current.csv, defects.csv), schema and reference profile."""
    out = tmp_path_factory.mktemp("example")
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_data.py"), "--rows", "8000", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    (out / "schema.yaml").write_text((EXAMPLES / "schema.yaml").read_text())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlcicd",
            "profile",
            "--data",
            "train.parquet",
            "--schema",
            "schema.yaml",
            "--out",
            "reference.json",
        ],
        check=True,
        capture_output=True,
        cwd=out,
    )
    return out


def assert_one_clear_error(result: Result, *needles: str) -> None:
    """Exit 2, exactly one ::error:: annotation mentioning every needle, and no traceback."""
    assert result.rc == 2, result.log
    assert len(result.errors) == 1, result.log
    for needle in needles:
        assert needle.lower() in result.errors[0].lower(), result.errors[0]
    assert "Traceback" not in result.log, result.log


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback (SQLite backend, proxied artifacts); yields its URI."""
    import time
    import urllib.request

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "w")  # closed at teardown
    proc = subprocess.Popen(
        [
            str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,  # its workers die with it
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded runner (xdist workers, other servers) starts it slowly
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield uri
    import os
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture
def embedded_home(tmp_path_factory, monkeypatch) -> Path:
    """An empty MLCICD_HOME (embedded SQLite registry) for one test; no tracking server."""
    home = tmp_path_factory.mktemp("mlcicd-home")
    monkeypatch.setenv("MLCICD_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home

"""The serve check: `mlflow models serve` on loopback must answer as the model does in-process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlcicd.gates import GateResult

from .decide import gate

SERVE_ROWS = 20
SERVE_START_SECONDS = 180


def served_gate(passed: bool, detail: str) -> GateResult:
    return gate("serve check", None, None, None, passed, detail)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_check(model_uri: str, x: Any, expected: Any) -> GateResult:
    """`mlflow models serve --env-manager local` on loopback: answers must match in-process predictions. Named
    rows (a DataFrame) go as `dataframe_split`, an array as `inputs`."""
    import numpy as np
    import requests

    from mlcicd.model_input import head, to_json_rows

    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with tempfile.TemporaryFile() as log:
        # `mlflow models serve` execs uvicorn by name: it must find the toolkit's own, whose
        # directory is not on PATH (setup puts only a shim there).
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        try:
            deadline = time.monotonic() + SERVE_START_SECONDS
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    return served_gate(
                        False, f"`mlflow models serve` exited {server.returncode}: {' | '.join(tail)}"
                    )
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    return served_gate(
                        False, f"the server did not answer /ping within {SERVE_START_SECONDS}s"
                    )
                time.sleep(0.5)
            rows = head(x, SERVE_ROWS)
            response = requests.post(
                f"http://127.0.0.1:{port}/invocations", json=to_json_rows(rows), timeout=60
            )
            if response.status_code != 200:
                return served_gate(
                    False, f"POST /invocations answered HTTP {response.status_code}: {response.text[:200]}"
                )
            try:
                served = np.asarray(response.json()["predictions"])
                local = np.asarray(expected[: len(rows)]).reshape(served.shape)
            except (ValueError, KeyError, TypeError) as exc:
                return served_gate(
                    False, f"unexpected /invocations answer ({type(exc).__name__}): {response.text[:200]}"
                )
            if served.dtype.kind in "biuf" and local.dtype.kind in "biuf":
                same = bool(np.allclose(served.astype(float), local.astype(float), rtol=1e-4, atol=1e-5))
            else:  # labels as strings
                same = bool(np.array_equal(served.astype(str), local.astype(str)))
            return served_gate(
                same,
                f"{len(rows)} rows over HTTP {'match' if same else 'DIFFER from'} in-process predictions",
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 15)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, 9)
                server.wait()

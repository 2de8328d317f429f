"""A canary rig for the canary-shift tests: two model servers, a router (HAProxy or the fixture `http`
router), Prometheus scraping the servers, and a paced load generator, all on 127.0.0.1.

Every component is a context manager that always tears its processes down (the whole process group),
so a failing test leaves nothing behind:

    with model_servers(tmp_path) as (stable, canary), haproxy(tmp_path, stable, canary) as lb, \\
            prometheus(tmp_path, [stable, canary]) as prom, LoadGenerator(lb.url) as load:
        lb.set_weight("canary", 20)
        ...
        assert 0.15 < load.canary_share(since, until) < 0.25

The same pieces are pytest fixtures (`servers`, `haproxy_rig`, `router_rig`, `prometheus_rig`): a test
module gets them with `pytest_plugins = ["canary_rig"]`. That module also imports from here before
pytest loads it as a plugin, which pytest would flag (and -W error fail) as "already imported so cannot
be rewritten"; there are no asserts here to rewrite, hence PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import pytest
import requests

from conftest import free_port

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SERVING = Path(__file__).resolve().parent.parent / "examples" / "serving"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"  # /usr/sbin is not on every user's PATH
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DEFAULT_PAYLOAD = {"inputs": [[42.0, 48000.0, 24.0, 60.0, 1.0]]}
"""One customer of the example (age, income, tenure_months, monthly_spend, support_tickets): valid input
for the stand-in's constant rule and for the example model alike."""


class Process:
    """A subprocess in a session (process group) of its own, logging stdout+stderr to a file.

    Ready when a line of its output starts with `ready_line`, or when `url` answers with a status below
    500 (HAProxy with no live server and Prometheus while starting both answer 503). Use it as a context
    manager, or call stop() in a finally: start_process() already stops it when it never gets ready.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ready_line: str | None = None,
        url: str | None = None,
        timeout: float = 20,
        log_path: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.ready_line, self.url, self.timeout = ready_line, url, timeout
        self.cwd, self.env = cwd, env
        self.temporary_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=Path(self.argv[0]).name + "-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.log_file: IO[bytes] | None = None
        self.startup_s = math.nan  # how long the last start took to get ready

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def start(self) -> Process:
        if self.alive:
            raise RuntimeError(f"{self.argv[0]} is already running (pid {self.pid})")
        self.close_log()
        self.log_file = open(self.log_path, "ab")  # append: a restart keeps the log of the first run
        offset = self.log_file.tell()
        started = time.monotonic()
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env,
            start_new_session=True,  # its own process group: stop() reaches whatever it spawned
        )  # fmt: skip
        try:
            self.wait_ready(offset, started + self.timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        return self

    def wait_ready(self, offset: int, deadline: float) -> None:
        while True:
            if self.ready_line is not None and self.saw_ready_line(offset):
                return
            if self.url is not None and self.ready_line is None and self.answers(self.url):
                return
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.argv)} exited with {self.popen.returncode} before it was ready:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{' '.join(self.argv)} was not ready after {self.timeout}s:\n{self.log()}"
                )
            time.sleep(0.05)

    def saw_ready_line(self, offset: int) -> bool:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return any(line.startswith(self.ready_line.encode()) for line in log.read().splitlines())

    @staticmethod
    def answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the group, SIGKILL if it is still there after `timeout` s. Idempotent."""
        if self.popen is not None:
            if self.popen.poll() is None:
                self.signal_group(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # The leader is gone (or stuck); whatever it left in its group goes too, SIGTERM handled or not.
            self.signal_group(signal.SIGKILL)
            self.popen.wait()
        self.close_log()

    def kill(self) -> None:
        """SIGKILL the group at once, as a crash would: no graceful shutdown, sockets just close."""
        if self.popen is not None:
            self.signal_group(signal.SIGKILL)
            self.popen.wait()
        self.close_log()

    def restart(self) -> Process:
        self.stop()
        return self.start()

    def close_log(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.temporary_log and exc[0] is None:
            self.log_path.unlink(
                missing_ok=True
            )  # kept when the block failed: it is what explains the failure


def start_process(
    argv: Sequence[str],
    *,
    ready_line: str | None = None,
    url: str | None = None,
    timeout: float = 20,
    log_path: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Process:
    """Start argv and wait until it is ready (see Process); stopped again if it never gets there."""
    if ready_line is None and url is None:
        raise ValueError("start_process needs ready_line or url to know when the process is ready")
    return Process(
        argv, ready_line=ready_line, url=url, timeout=timeout, log_path=log_path, cwd=cwd, env=env
    ).start()


def get_json(url: str, timeout: float = 5, **kwargs: object) -> object:
    response = requests.get(url, timeout=timeout, **kwargs)
    response.raise_for_status()
    return response.json()


# --- model servers -----------------------------------------------------------------------------------


@dataclass
class ModelServer:
    """One examples/serving/model_server.py process."""

    variant: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_fault(self, error_rate: float | None = None, delay_ms: float | None = None) -> dict[str, float]:
        """Inject faults from now on: error_rate in [0, 1], delay_ms added to the base delay. None keeps the current value."""
        document = {
            k: v for k, v in {"error_rate": error_rate, "delay_ms": delay_ms}.items() if v is not None
        }
        response = requests.post(self.url + "/admin/fault", json=document, timeout=5)
        response.raise_for_status()
        return response.json()

    def fault(self) -> dict[str, float]:
        return get_json(self.url + "/admin/fault")

    def model_uri(self) -> str:
        """The model it serves now; empty for the constant rule."""
        return get_json(self.url + "/admin/model")["model_uri"]

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=5).text


class ModelServers(NamedTuple):
    stable: ModelServer
    canary: ModelServer


@contextlib.contextmanager
def model_servers(
    tmp_path: Path,
    *,
    delay_ms: float = 5.0,
    seed: int = 0,
    lazy_series: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[ModelServers]:
    """Two model servers, variants `stable` and `canary` (canary's RNG is seeded seed + 1).

    env: their environment (e.g. MLFLOW_TRACKING_URI, for servers that are told to load a registered model).

    lazy_series: export http_requests_total{code="500"} only after the first 500 (prometheus_client's
    behaviour) instead of at 0 from the start, so an error query returns nothing until then.
    """
    with contextlib.ExitStack() as stack:
        started = []
        for i, variant in enumerate(("stable", "canary")):
            port = free_port()
            argv = [
                sys.executable, SERVING / "model_server.py", "--port", port, "--variant", variant, "--delay-ms", delay_ms, "--seed", seed + i,
                *(["--lazy-series"] if lazy_series else []),
            ]  # fmt: skip
            process = stack.enter_context(
                start_process(argv, ready_line="ready", log_path=tmp_path / f"model-{variant}.log", env=env)
            )
            started.append(ModelServer(variant, port, process))
        yield ModelServers(*started)


# --- HAProxy -----------------------------------------------------------------------------------------


HAPROXY_CONFIG = """\
global
    nbthread 1
    stats socket ipv4@127.0.0.1:{admin_port} level admin
    stats socket {socket_path} level admin

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive

frontend models
    bind 127.0.0.1:{port}
    default_backend {backend}

frontend metrics
    bind 127.0.0.1:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}

backend {backend}
    balance roundrobin{health}
    server stable {stable} weight {stable_weight}{check}
    server canary {canary} weight {canary_weight}{check}
"""
HEALTH_CHECK = ("\n    option httpchk GET /health", " check inter 500ms fall 2 rise 1")
"""HAProxy's own health checks, which canary-shift reads (`show servers state`) before a handoff."""


@dataclass
class HAProxy:
    """An `haproxy -db` process balancing backend `model` over the two servers; runtime API on TCP and a unix socket."""

    port: int
    admin_port: int
    metrics_port: int
    socket_path: Path
    config_path: Path
    process: Process
    backend: str = "model"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_address(self) -> str:
        """HAProxy's own Prometheus exporter (`haproxy_server_http_responses_total{proxy="model",server=...,code="5xx"}`, ...) at /metrics."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def admin_address(self) -> str:
        return f"127.0.0.1:{self.admin_port}"

    def command(self, line: str, timeout: float = 5) -> str:
        """One runtime-API command on its own connection (non-interactive mode: HAProxy answers and closes)."""
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=timeout) as sock:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def set_weight(self, server: str, weight: int | str) -> str:
        """`set weight model/<server> <weight>`; HAProxy answers an empty line on success, an error message otherwise."""
        return self.command(f"set weight {self.backend}/{server} {weight}")

    def weights(self) -> dict[str, int]:
        """Current weights, from `get weight model/<server>` ("95 (initial 100)")."""
        out = {}
        for server in ("stable", "canary"):
            answer = self.command(f"get weight {self.backend}/{server}")
            try:
                out[server] = int(answer.split()[0])
            except (IndexError, ValueError):
                raise RuntimeError(
                    f"get weight {self.backend}/{server}: unexpected answer {answer!r}"
                ) from None
        return out

    def kill(self) -> None:
        """SIGKILL, as a router crash would."""
        self.process.kill()

    def restart(self) -> None:
        """Start again from the same config and ports: the weights are the config's again (stable 100, canary 0)."""
        self.process.restart()

    def stop(self) -> None:
        self.process.stop()


def short_socket_dir(tmp_path: Path, stack: contextlib.ExitStack) -> Path:
    # A unix socket path is at most 107 bytes (sun_path); pytest's tmp_path for a long test name can be longer.
    if len(str(tmp_path / "haproxy.sock")) < 100:
        return tmp_path
    short = Path(tempfile.mkdtemp(prefix="hap-"))
    stack.callback(shutil.rmtree, short, ignore_errors=True)
    return short


@contextlib.contextmanager
def haproxy(
    tmp_path: Path,
    stable: ModelServer,
    canary: ModelServer,
    *,
    stable_weight: int = 100,
    canary_weight: int = 0,
    check: bool = False,
) -> Iterator[HAProxy]:
    with contextlib.ExitStack() as stack:
        port, admin_port, metrics_port = free_port(), free_port(), free_port()
        socket_path = short_socket_dir(tmp_path, stack) / "haproxy.sock"
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                admin_port=admin_port, socket_path=socket_path, port=port, metrics_port=metrics_port, backend="model",
                stable=stable.address, canary=canary.address, stable_weight=stable_weight, canary_weight=canary_weight,
                health=HEALTH_CHECK[0] if check else "", check=HEALTH_CHECK[1] if check else "",
            )
        )  # fmt: skip
        # -db: foreground, no daemon, so the process we started is the one that serves (and the one we kill).
        process = start_process(
            [HAPROXY, "-f", config, "-db"],
            url=f"http://127.0.0.1:{port}/health",
            log_path=tmp_path / "haproxy.log",
        )
        stack.enter_context(process)
        yield HAProxy(port, admin_port, metrics_port, socket_path, config, process)


# --- the fixture http router -------------------------------------------------------------------------


@dataclass
class HttpRouter:
    """One tests/fixtures/http_router.py process (the `http` router and metrics-source contracts)."""

    port: int
    process: Process
    route: str = "model"
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_address(self) -> str:
        """The address for `metrics: {type: http}`: canary-shift GETs it with ?window=<seconds>."""
        return f"{self.url}/metrics/summary"

    @property
    def weights_url(self) -> str:
        return f"{self.url}/routes/{self.route}/weights"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def weights(self) -> dict[str, float]:
        return get_json(self.weights_url, headers=self.headers())

    def set_weights(self, canary: float, shadow: float | None = None) -> dict[str, float]:
        document = {"canary": canary, "stable": 1 - canary}
        if shadow is not None:
            document["shadow"] = shadow
        response = requests.put(self.weights_url, json=document, headers=self.headers(), timeout=5)
        response.raise_for_status()
        return response.json()

    def summary(self, window: float) -> dict[str, dict[str, object]]:
        return get_json(f"{self.url}/metrics/summary?window={window}")

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        """Same port again; weights and the metrics history start from scratch, as a real restart would."""
        self.process.restart()

    def stop(self) -> None:
        self.process.stop()


@contextlib.contextmanager
def http_router(
    tmp_path: Path, stable: ModelServer, canary: ModelServer, *extra_args: str, token: str | None = None
) -> Iterator[HttpRouter]:
    """The fixture router; extra_args go to its command line (--fail-puts N, --ignore-puts, --route NAME)."""
    port = free_port()
    route = extra_args[list(extra_args).index("--route") + 1] if "--route" in extra_args else "model"
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_TOKEN"}
    if token:
        env["ROUTER_TOKEN"] = token
    argv = [
        sys.executable,
        FIXTURES / "http_router.py",
        "--port",
        port,
        "--stable",
        stable.url,
        "--canary",
        canary.url,
        *extra_args,
    ]
    with start_process(argv, ready_line="ready", log_path=tmp_path / "http-router.log", env=env) as process:
        yield HttpRouter(port, process, route, token)


# --- Prometheus --------------------------------------------------------------------------------------


@dataclass
class Prometheus:
    port: int
    config_path: Path
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str, at: float | None = None) -> list[dict[str, object]]:
        """The instant vector (`result` of /api/v1/query) for promql, now or at a unix time."""
        params = {"query": promql} if at is None else {"query": promql, "time": at}
        document = get_json(self.url + "/api/v1/query", params=params)
        return document["data"]["result"]

    def value(self, promql: str, at: float | None = None) -> float | None:
        """The single value promql evaluates to; None when the result is empty (no series in the window)."""
        result = self.query(promql, at)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{promql} returned {len(result)} series; aggregate it to one")
        return float(result[0]["value"][1])


def prometheus_config(targets: Sequence[ModelServer | tuple[str | None, str]], scrape_interval: str) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  scrape_timeout: {scrape_interval}",  # the 10s default is refused when longer than the interval
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
        "  - job_name: models",
        # The servers label their own series with `variant` already; honoring them avoids a duplicate `exported_variant`.
        "    honor_labels: true",
        "    static_configs:",
    ]
    if not targets:
        lines.append("      []")
    for target in targets:
        variant, address = (target.variant, target.address) if isinstance(target, ModelServer) else target
        lines.append(f'      - targets: ["{address}"]')
        if variant is not None:
            lines += ["        labels:", f'          variant: "{variant}"']
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def prometheus(
    tmp_path: Path,
    targets: Sequence[ModelServer | tuple[str | None, str]] = (),
    *,
    scrape_interval: str = "1s",
    timeout: float = 60,
) -> Iterator[Prometheus]:
    """Prometheus scraping targets (model servers, or (variant, "host:port") pairs), every second by default.

    A (None, address) target gets no `variant` label: HAProxy's exporter, `(None, lb.metrics_address)`.

    Ready once /-/ready answers and every target has been scraped and is `up`; with no targets it scrapes
    nothing and every query is empty (the "Prometheus returns nothing" case).
    """
    port = free_port()
    # A fresh directory per start: a second Prometheus in the same test must not see the first one's series.
    root = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    config = root / "prometheus.yml"
    config.write_text(prometheus_config(targets, scrape_interval))
    argv = [
        PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}", "--storage.tsdb.retention.time=1h",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    with start_process(
        argv, url=f"http://127.0.0.1:{port}/-/ready", log_path=root / "prometheus.log", timeout=timeout
    ) as process:
        handle = Prometheus(port, config, process)
        deadline = time.monotonic() + timeout
        while targets:
            up = handle.query("up")
            if len(up) == len(targets) and all(series["value"][1] == "1" for series in up):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus targets not up after {timeout}s: {up}\n{process.log()}")
            time.sleep(0.2)
        yield handle


# --- load --------------------------------------------------------------------------------------------


class Record(NamedTuple):
    mono: float  # time.monotonic() when the request was sent
    wall: float  # time.time() when the request was sent
    variant: str | None  # X-Variant of the answer; None when there was no answer or no header
    status: int | None  # None: connection error or timeout
    latency_s: float


class LoadGenerator:
    """`threads` threads POSTing payload to {url}{path} at `rate` requests/s in total, each on a keep-alive session.

    Each thread is paced on its own schedule (rate/threads per thread, offset so the total is even); a
    thread that falls behind (slow answers) does not burst more than 0.2 s worth of requests to catch up,
    so the rate is an upper bound. Connection errors are recorded (status None) and the thread carries on,
    so a router can be killed under load. Records carry the time the request was *sent*.
    """

    def __init__(
        self,
        url: str,
        rate: float = 300,
        threads: int = 8,
        payload: object = None,
        *,
        path: str = "/invocations",
        timeout: float = 5,
    ) -> None:
        self.url = url.rstrip("/") + path
        self.rate, self.threads, self.timeout = rate, threads, timeout
        self.body = json.dumps(DEFAULT_PAYLOAD if payload is None else payload).encode()
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.workers: list[threading.Thread] = []
        self.started_wall = math.nan

    def start(self) -> LoadGenerator:
        self.stopping.clear()
        self.started_wall = time.time()
        t0 = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(
                target=self.run, args=(t0 + i / self.rate,), name=f"load-{i}", daemon=True
            )
            worker.start()
            self.workers.append(worker)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for worker in self.workers:
            worker.join(timeout=self.timeout + 5)
        self.workers = []

    def run(self, next_at: float) -> None:
        interval = self.threads / self.rate
        headers = {"Content-Type": "application/json"}
        with requests.Session() as session:
            while not self.stopping.is_set():
                now = time.monotonic()
                if next_at > now and self.stopping.wait(next_at - now):
                    break
                mono, wall = time.monotonic(), time.time()
                variant = status = None
                try:
                    response = session.post(self.url, data=self.body, headers=headers, timeout=self.timeout)
                    variant, status = response.headers.get("X-Variant"), response.status_code
                except (requests.RequestException, OSError):
                    session.close()  # a dead connection must not be reused; the session opens a fresh one
                latency = time.monotonic() - mono
                with self.lock:
                    self.records.append(Record(mono, wall, variant, status, latency))
                next_at = max(next_at + interval, time.monotonic() - 0.2)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def window(self, since: float | None = None, until: float | None = None) -> list[Record]:
        """Records of requests sent in [since, until) (wall-clock time.time() values; None = open)."""
        with self.lock:
            records = list(self.records)
        # Appended as answers arrive; sorted by send time, which is what a weight change is compared with.
        return sorted(
            (r for r in records if (since is None or r.wall >= since) and (until is None or r.wall < until)),
            key=lambda r: r.wall,
        )

    def split(self, since: float | None = None, until: float | None = None) -> dict[str | None, int]:
        """Requests per variant (X-Variant); None counts the ones without an answer or header."""
        return dict(Counter(r.variant for r in self.window(since, until)))

    def canary_share(self, since: float | None = None, until: float | None = None) -> float:
        """canary / (stable + canary) among answered requests; NaN when none were answered."""
        split = self.split(since, until)
        answered = split.get("stable", 0) + split.get("canary", 0)
        return split.get("canary", 0) / answered if answered else math.nan

    def errors(self, since: float | None = None, until: float | None = None) -> dict[str | None, int]:
        """Failed requests (status >= 500 or no answer) per variant."""
        return dict(
            Counter(r.variant for r in self.window(since, until) if r.status is None or r.status >= 500)
        )

    def achieved_rate(self, since: float | None = None, until: float | None = None) -> float:
        records = self.window(since, until)
        if len(records) < 2:
            return 0.0
        span = records[-1].wall - records[0].wall
        return (len(records) - 1) / span if span > 0 else math.nan


# --- pytest fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ModelServers]:
    with model_servers(tmp_path) as pair:
        yield pair


@pytest.fixture
def haproxy_rig(tmp_path: Path, servers: ModelServers) -> Iterator[HAProxy]:
    with haproxy(tmp_path, *servers) as lb:
        yield lb


@pytest.fixture
def router_rig(tmp_path: Path, servers: ModelServers) -> Iterator[HttpRouter]:
    with http_router(tmp_path, *servers) as router:
        yield router


@pytest.fixture
def prometheus_rig(tmp_path: Path, servers: ModelServers) -> Iterator[Prometheus]:
    with prometheus(tmp_path, list(servers)) as prom:
        yield prom


__all__ = [
    "HAProxy",
    "HttpRouter",
    "LoadGenerator",
    "ModelServer",
    "ModelServers",
    "Process",
    "Prometheus",
    "Record",
    "haproxy",
    "haproxy_rig",
    "http_router",
    "model_servers",
    "prometheus",
    "prometheus_rig",
    "router_rig",
    "servers",
    "start_process",
]

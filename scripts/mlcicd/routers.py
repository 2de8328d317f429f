"""Traffic routers canary-shift drives: set the canary's share, read it back, verify.

- `http`: a small documented contract any team can put in front of anything:
  `PUT {address}/routes/{route}/weights` with `{"canary": w, "stable": 1 - w}` (fractions), an
  optional `"shadow": s` (the fraction of requests also copied to the canary), and `GET` of the same
  path returning the current document. Optional bearer token from `MLCICD_ROUTER_TOKEN`.
- `haproxy`: the HAProxy Runtime API (`stats socket … level admin`) over TCP or a unix socket:
  `set weight <backend>/<server> <n>`, read back with `get weight`. Hitless, no reload. The two
  servers' weights always add up to 100, so a weight is the percentage of requests.
- `gateway-api`, `istio`, `kserve`: an HTTPRoute, a VirtualService or an InferenceService through the
  Kubernetes API (mlcicd.kube_routers, mlcicd.kserve; the official client is an optional extra).

Every change is read back; a router that does not answer is retried with backoff before
RouterError is raised, so a transient blip does not roll a healthy canary back.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from mlcicd.config import closest, parse_yaml, shown
from mlcicd.router_base import RETRY_DELAYS, Router, RouterError, RouterRefused, Weights

__all__ = ["RETRY_DELAYS", "Router", "RouterError", "RouterRefused", "Weights", "make_router", "router_spec"]

ROUTER_TYPES = ("http", "haproxy", "gateway-api", "istio", "kserve")
TOKEN_ENV = "MLCICD_ROUTER_TOKEN"


HEALTH_WAIT = 15.0
"""Seconds a server may take to pass HAProxy's health checks after its deploy (a few `inter` periods)."""
SERVER_OP_STATES = {0: "stopped (down)", 1: "starting", 2: "running", 3: "stopping"}


# --- the `router` option --------------------------------------------------------------------

ROUTER_KEYS = {
    "http": {"type", "address", "route", "stable", "canary", "timeout"},
    "haproxy": {"type", "address", "backend", "stable", "canary", "timeout"},
    # Kubernetes (mlcicd.kube_routers): the object's namespace/name, credentials as in mlcicd.kube
    "gateway-api": {"type", "namespace", "name", "stable", "canary", "timeout", "kubeconfig", "context"},
    "istio": {"type", "namespace", "name", "stable", "canary", "timeout", "kubeconfig", "context"},
    "kserve": {"type", "namespace", "name", "stable", "canary", "timeout", "kubeconfig", "context", "format"},
}
KUBE_REQUIRED = ("namespace", "name")
ROUTER_EXAMPLE = "{type: haproxy, address: 127.0.0.1:9999, backend: model, stable: stable, canary: canary}"


def parse_spec(
    value: Any, kinds: Mapping[str, set[str]], required: Mapping[str, tuple[str, ...]], what: str
) -> dict[str, Any]:
    """A mapping option (`router`, `metrics`): a YAML mapping in mlcicd.yaml, or the same mapping
    written as YAML text in an action input. Unknown keys are errors, as everywhere in the config."""
    import yaml

    if isinstance(value, str) and not value.strip() or value == {}:
        return {}  # not set: the stage says what is missing
    if isinstance(value, str):
        try:
            value = parse_yaml(value)
        except (yaml.YAMLError, RecursionError) as exc:
            problem = getattr(exc, "problem", None)
            raise ValueError(
                f"not a YAML mapping{f' ({problem})' if problem else ''}; write it as `{{type: …, address: "
                "…}}`"
            ) from None
    if not isinstance(value, dict):
        raise ValueError("expected a mapping with `type` and `address`")
    spec = {str(k): v for k, v in value.items()}
    kind = str(spec.get("type", "")).strip().lower()
    if kind not in kinds:
        raise ValueError(f"`{what}.type` is {shown(spec.get('type'))}; use one of: {', '.join(kinds)}")
    spec["type"] = kind
    for key in spec:
        if key not in kinds[kind]:
            others = [k for k, keys in kinds.items() if key in keys and k != kind]
            hint = f" (only the {others[0]} {what} has it)" if others else closest(key, sorted(kinds[kind]))
            raise ValueError(
                f"`{what}.{key}` is not a setting of the {kind} {what}{hint}; valid: "
                f"{', '.join(sorted(kinds[kind]))}"
            )
    for key in required[kind]:
        if not str(spec.get(key) or "").strip():
            raise ValueError(f"the {kind} {what} needs `{key}`")
    if "timeout" in spec:
        try:
            spec["timeout"] = float(spec["timeout"])
        except (TypeError, ValueError):
            raise ValueError(
                f"`{what}.timeout` is {shown(spec['timeout'])}, not a number of seconds"
            ) from None
        if not 0 < spec["timeout"] <= 300:
            raise ValueError(f"`{what}.timeout` must be between 0 and 300 seconds")
    for key, item in spec.items():
        if key not in ("queries", "checks") and isinstance(item, (dict, list)):
            raise ValueError(f"`{what}.{key}` must be a single value")
    return spec


def router_spec(value: Any) -> dict[str, Any]:
    required = {"http": ("address", "route"), "haproxy": ("address", "backend")}
    return parse_spec(
        value, ROUTER_KEYS, {kind: required.get(kind, KUBE_REQUIRED) for kind in ROUTER_KEYS}, "router"
    )


def make_router(spec: Mapping[str, Any]) -> Router:
    timeout = float(spec.get("timeout", 5.0))
    stable, canary = str(spec.get("stable") or "stable"), str(spec.get("canary") or "canary")
    if stable == canary:
        raise ValueError(
            f"`router.stable` and `router.canary` are both {stable!r}; name two different servers"
        )
    if spec["type"] == "kserve":
        from mlcicd.kserve import KServeRouter

        return KServeRouter(spec, stable, canary, timeout)
    if spec["type"] in ("gateway-api", "istio"):
        from mlcicd.kube_routers import GatewayApiRouter, IstioRouter

        kind = GatewayApiRouter if spec["type"] == "gateway-api" else IstioRouter
        return kind(spec, stable, canary, timeout)
    if spec["type"] == "http":
        return HttpRouter(str(spec["address"]), str(spec["route"]), stable, canary, timeout)
    return HaproxyRouter(str(spec["address"]), str(spec["backend"]), stable, canary, timeout)


def request_json(
    method: str, url: str, token_env: str, error: type[Exception], expected: str, **kwargs: Any
) -> dict[str, Any]:
    """One HTTP call to a JSON API (the http router, the http metrics source), with the bearer token
    from `token_env`; every failure becomes `error` with a message that says what went wrong."""
    import requests

    headers = {"Accept": "application/json"}
    token = os.environ.get(token_env, "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.request(method, url, headers=headers, **kwargs)
    except requests.RequestException as exc:
        raise error(f"{method} {url}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise error(f"{method} {url}: HTTP {response.status_code}; set {token_env} to a token it accepts")
    if response.status_code >= 300:
        raise error(f"{method} {url}: HTTP {response.status_code} {response.text[:200].strip()}")
    try:
        document = response.json()
    except ValueError:
        raise error(f"{method} {url} did not return JSON (got {response.text[:80].strip()!r}…)") from None
    if not isinstance(document, dict):
        raise error(f"{method} {url} returned {type(document).__name__}, not {expected}")
    return document


# --- routers -------------------------------------------------------------------------------


class HttpRouter(Router):
    kind = "http"
    supports_shadow = True

    def __init__(self, address: str, route: str, stable: str, canary: str, timeout: float) -> None:
        super().__init__(stable, canary, timeout)
        if not address.startswith(("http://", "https://")):
            raise ValueError(f"`router.address` {address!r} must be an http:// or https:// URL")
        self.url = f"{address.rstrip('/')}/routes/{route}/weights"

    def describe(self) -> str:
        return f"the http router at {self.url}"

    def _request(self, method: str, body: dict[str, float] | None = None) -> dict[str, Any]:
        return request_json(
            method, self.url, TOKEN_ENV, RouterError, "a weights object", json=body, timeout=self.timeout
        )

    def read(self) -> Weights:
        document = self._request("GET")
        try:
            canary, stable = float(document["canary"]), float(document["stable"])
            shadow = float(document.get("shadow", 0.0) or 0.0)
        except (KeyError, TypeError, ValueError):
            raise RouterError(
                f'GET {self.url} returned {document!r}; expected {{"canary": w, "stable": 1 - w}}'
            ) from None
        if abs(canary + stable - 1.0) > 1e-6:
            raise RouterError(f"GET {self.url}: canary {canary} and stable {stable} do not add up to 1")
        return Weights(round(canary * 100, 6), round(shadow * 100, 6))

    def _write(self, weights: Weights) -> None:
        body = {"canary": weights.canary / 100, "stable": 1 - weights.canary / 100}
        if weights.shadow:
            body["shadow"] = weights.shadow / 100
        self._request("PUT", body)


class HaproxyRouter(Router):
    kind = "haproxy"

    def __init__(self, address: str, backend: str, stable: str, canary: str, timeout: float) -> None:
        super().__init__(stable, canary, timeout)
        self.backend = backend
        self.address = address
        if address.startswith("unix:") or address.startswith("/"):
            self.target: str | tuple[str, int] = address.removeprefix("unix:")
            self.family = socket.AF_UNIX
        else:
            host, _, port = address.removeprefix("tcp://").removeprefix("ipv4@").rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    f"`router.address` {address!r} is not host:port or unix:/path of HAProxy's stats socket"
                )
            self.family, self.target = socket.AF_INET, (host, int(port))

    def describe(self) -> str:
        return f"HAProxy's runtime API at {self.address} (backend {self.backend})"

    def command(self, line: str) -> str:
        """One command per connection (the API's non-interactive mode): send, read to EOF."""
        try:
            with socket.socket(self.family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.target)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise RouterError(f"{self.address}: {exc.strerror or type(exc).__name__}") from None
        return b"".join(chunks).decode(errors="replace").strip()

    def _weight(self, server: str) -> int:
        answer = self.command(f"get weight {self.backend}/{server}")
        first = answer.split(" ", 1)[0]
        if not first.isdigit():
            raise RouterError(f"`get weight {self.backend}/{server}` answered {answer[:200]!r}")
        return int(first)

    def unhealthy(self, server: str, wait: float = HEALTH_WAIT) -> str | None:
        """From `show servers state`: with `check` on the server line, HAProxy's own health checks set the
        operational state; a server just redeployed may take a few checks to come up, hence the wait."""
        deadline = time.monotonic() + wait
        while True:
            state = self._server_state(server)
            if state is None:
                return None
            op_state, admin_state = state
            problem = None
            if admin_state:
                problem = (
                    f"HAProxy has {self.backend}/{server} in maintenance or drain (srv_admin_state "
                    f"{admin_state})"
                )
            elif op_state != 2:
                problem = (
                    f"HAProxy's health checks see {self.backend}/{server} as "
                    f"{SERVER_OP_STATES.get(op_state, op_state)}"
                )
            if problem is None or time.monotonic() >= deadline:
                return problem
            time.sleep(1.0)

    def _server_state(self, server: str) -> tuple[int, int] | None:
        try:
            answer = self.command(f"show servers state {self.backend}")
        except RouterError:
            return None
        header: list[str] = []
        for line in answer.splitlines():
            if line.startswith("# "):
                header = line[2:].split()
                continue
            fields = line.split()
            if header and len(fields) >= len(header) - 4 and "srv_name" in header:
                row = dict(zip(header, fields, strict=False))
                if row.get("srv_name") == server:
                    try:
                        return int(row["srv_op_state"]), int(row["srv_admin_state"])
                    except (KeyError, ValueError):
                        return None
        return None

    def read(self) -> Weights:
        canary, stable = self._weight(self.canary), self._weight(self.stable)
        if canary + stable == 0:
            raise RouterError(
                f"both {self.backend}/{self.stable} and {self.backend}/{self.canary} have weight 0: nothing "
                "serves traffic"
            )
        return Weights(round(100 * canary / (canary + stable), 6))

    def _write(self, weights: Weights) -> None:
        if weights.shadow:
            raise RouterError("HAProxy cannot mirror traffic")
        canary = round(weights.canary)
        # Raise the receiving side first, so no instant has both servers at weight 0.
        order = [(self.canary, canary), (self.stable, 100 - canary)]
        if canary < self._weight(self.canary):
            order.reverse()
        for server, weight in order:
            answer = self.command(f"set weight {self.backend}/{server} {weight}")
            if answer:
                raise RouterError(f"`set weight {self.backend}/{server} {weight}` answered {answer[:200]!r}")

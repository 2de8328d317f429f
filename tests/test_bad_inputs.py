"""Hostile inputs, one table: every stage gets broken data, schemas, configs, model URIs and
router/metrics addresses, and must answer each with one clear `::error::` (naming the input and
the fix), exit 2 (1 where a check failed), no traceback, and leave the registry and the router
exactly as they were. The small inputs live in tests/bad_inputs/; big ones are made here.

The registry (an embedded MLflow store with real registered models) and the router (a real
HAProxy over two model servers) are shared by the whole table and compared before and after
every case.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest
from kube_fake import KubeApiServer

from canary_rig import haproxy, model_servers
from conftest import Result, free_port, parse_outputs

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
FIX = re.compile(
    r"(?:^|::|[.;:(]\s+|\bor\s+|\bthen\s+)(?:check|pass|set|use|fix|save|give|rename|re-encode|drop|write|install|remove|"
    r"regenerate|flatten|split|encode|declare|choose|rerun|point|leave|quote|select|register|keep|log)\b"
    r"|\be\.g\.|\bexample:|did you mean",
    re.IGNORECASE,
)
"""An error says what to do: a clause of every message starts with one of these verbs."""


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...]
    rc: int = 2
    make: str = ""
    """A generator for an input too big to commit (see MAKERS); it writes $made."""
    xfail: str = ""
    memory_limit: bool = False
    """Run under a 3 GiB address-space limit, for inputs that would otherwise eat the machine."""
    canary_weight: int = 0
    """The HAProxy canary weight the case finds (stable gets the rest): a rollout left half way."""


def case(id: str, *args: str, needles: tuple[str, ...], **kw) -> pytest.param:
    c = Case(id, args, needles, **kw)
    marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return pytest.param(c, id=id, marks=marks)


VD = ("validate-data", "--schema", "$corpus/schemas/good.yaml", "--report", "$work/vd.json")
GATES = ("check-gates", "--test-data", "$test_data", "--target", "label", "--report", "$work/gates.json")
HAPROXY = "{type: haproxy, address: '$haproxy', backend: model, timeout: 1}"
PROMETHEUS_DOWN = "{type: prometheus, address: 'http://$refused', timeout: 1}"
CANARY = ("canary-shift", "--interval", "1s", "--report", "$work/canary.json")
KUBE = (
    "canary-shift",
    "--interval",
    "1s",
    "--report",
    "$work/canary.json",
    "--metrics",
    PROMETHEUS_DOWN,
    "--router",
)
"""A Kubernetes router case: the router mapping follows, on the stand-in API server (tests/kube_fake.py)."""
WIDE_COLUMNS = 1_000_000

CASES = [
    # --- data (validate-data; check-gates reads test data the same way) ---
    case("data-empty", *VD, "--data", "$corpus/data/empty.csv", needles=("empty.csv", "is empty")),
    case(
        "data-header-only",
        *VD,
        "--data",
        "$corpus/data/header_only.csv",
        needles=("header_only.csv", "no rows"),
    ),
    case(
        "data-binary-garbage",
        *VD,
        "--data",
        "$corpus/data/garbage.csv",
        needles=("garbage.csv", "does not parse"),
    ),
    case(
        "data-non-utf8",
        *VD,
        "--data",
        "$corpus/data/latin1.csv",
        needles=("latin1.csv", "not valid UTF-8", "encoding"),
    ),
    case(
        "data-mixed-types",
        *VD,
        "--data",
        "$corpus/data/mixed_types.csv",
        needles=("mixed_types.csv", "forty", "`age`"),
    ),
    case("data-all-nan", *VD, "--data", "$corpus/data/all_nan.csv", needles=("all_nan.csv", "no values")),
    case(
        "data-duplicated-columns",
        *VD,
        "--data",
        "$corpus/data/duplicated_columns.csv",
        needles=("`age` appears twice", "rename"),
    ),
    case(
        "data-corrupt-parquet",
        *VD,
        "--data",
        "$corpus/data/garbage.parquet",
        needles=("garbage.parquet",),
    ),  # fmt: skip
    case("data-missing-file", *VD, "--data", "$work/nope.csv", needles=("nope.csv",)),
    case(
        "data-1e6-columns",
        *VD,
        "--data",
        "$made",
        needles=("columns",),
        make="wide_csv",
        memory_limit=True,
    ),  # fmt: skip
    case(
        "gates-test-data-mixed-types",
        *GATES,
        "--model-uri",
        "models:/churn/1",
        "--test-data",
        "$corpus/data/mixed_types.csv",
        needles=("mixed_types.csv",),
    ),  # fmt: skip
    # --- schemas ---
    case(
        "schema-malformed-yaml",
        *VD,
        "--data",
        "$ok_csv",
        "--schema",
        "$corpus/schemas/malformed.yaml",
        needles=("malformed.yaml",),
    ),
    case(
        "schema-unknown-check",
        *VD,
        "--data",
        "$ok_csv",
        "--schema",
        "$corpus/schemas/unknown_check.yaml",
        needles=("unknown_check.yaml", "is_plausible_age"),
    ),  # fmt: skip
    case(
        "schema-pandera-version-mismatch",
        *VD,
        "--data",
        "$ok_csv",
        "--schema",
        "$corpus/schemas/future_pandera.yaml",
        needles=("future_pandera.yaml", "installed"),
    ),  # fmt: skip
    case(
        "schema-not-a-mapping",
        *VD,
        "--data",
        "$ok_csv",
        "--schema",
        "$corpus/schemas/not_a_mapping.yaml",
        needles=("not_a_mapping.yaml",),
    ),
    case(
        "schema-missing", *VD, "--data", "$ok_csv", "--schema", "$work/absent.yaml", needles=("absent.yaml",)
    ),
    # --- configs (mlcicd.yaml; every stage validates every section) ---
    case(
        "config-unknown-key",
        "validate-data",
        "--config",
        "$corpus/configs/unknown_key.yaml",
        needles=("drift-treshold", "did you mean"),
    ),
    case(
        "config-unknown-section",
        "promote",
        "--config",
        "$corpus/configs/unknown_section.yaml",
        needles=("`deploy` is not a stage",),
    ),
    case(
        "config-wrong-type",
        "validate-data",
        "--config",
        "$corpus/configs/wrong_type.yaml",
        needles=("drift-threshold", "'high'"),
    ),
    case(
        "config-negative-interval",
        "canary-shift",
        "--config",
        "$corpus/configs/negative_interval.yaml",
        needles=("interval", "-5m"),
    ),
    case(
        "config-weights-over-100",
        "canary-shift",
        "--config",
        "$corpus/configs/weights_over_100.yaml",
        needles=("steps", "150"),
    ),
    case(
        "config-max-model-size-5XB",
        "check-gates",
        "--config",
        "$corpus/configs/size_5XB.yaml",
        needles=("max-model-size", "5XB"),
    ),
    case(
        "config-empty-latency-iterations",
        "check-gates",
        "--config",
        "$corpus/configs/empty_iterations.yaml",
        needles=("latency-iterations", "''", "Example: `500`"),
    ),
    case(
        "config-yaml-bomb",
        "canary-shift",
        "--config",
        "$corpus/configs/bomb_in_value.yaml",
        needles=("bomb_in_value.yaml", "aliases"),
        memory_limit=True,
    ),  # fmt: skip
    case(
        "config-duplicate-key",
        "canary-shift",
        "--config",
        "$corpus/configs/duplicate_key.yaml",
        needles=("`interval` is given twice",),
    ),
    case(
        "config-not-utf8",
        "train-gpu",
        "--config",
        "$corpus/configs/latin1.yaml",
        needles=("latin1.yaml", "UTF-8"),
    ),
    case(
        "config-top-level-list",
        "check-gates",
        "--config",
        "$corpus/configs/top_level_list.yaml",
        needles=("top_level_list.yaml",),
    ),
    case(
        "config-wrong-boolean",
        "canary-shift",
        "--config",
        "$corpus/configs/wrong_boolean.yaml",
        needles=("dry-run", "maybe"),
    ),
    case(
        "config-list-for-scalar",
        "promote",
        "--config",
        "$corpus/configs/list_for_scalar.yaml",
        needles=("promote.alias", "single value"),
    ),
    case(
        "config-router-unknown-key",
        "canary-shift",
        "--config",
        "$corpus/configs/router_unknown_key.yaml",
        needles=("router.weight",),
    ),
    case(
        "config-checks-unknown-key",
        "canary-shift",
        "--config",
        "$corpus/configs/checks_unknown_key.yaml",
        needles=("metrics.checks.conversion.tolerence", "did you mean `tolerance`"),
    ),  # fmt: skip
    case(
        "config-checks-not-a-list",
        "canary-shift",
        "--config",
        "$corpus/configs/checks_not_a_list.yaml",
        needles=("metrics.checks", "list"),
    ),
    case(
        "config-checks-bad-number",
        "canary-shift",
        "--config",
        "$corpus/configs/checks_bad_values.yaml",
        needles=("checks.scores.max-psi", "lots"),
    ),  # fmt: skip
    case(
        "config-too-large", "promote", "--config", "$made", needles=("too large", "1 MiB"), make="big_config"
    ),
    case("config-nested-too-deep", "promote", "--config", "$made", needles=("nest",), make="deep_config"),
    case(
        "config-missing", "promote", "--config", "$work/mlcicd.yml", needles=("mlcicd.yml", "does not exist")
    ),
    # --- stage options given as inputs ---
    case(
        "input-negative-interval",
        "canary-shift",
        "--router",
        HAPROXY,
        "--interval=-30s",
        needles=("interval", "-30s"),
    ),
    case(
        "input-weights-over-100",
        "canary-shift",
        "--router",
        HAPROXY,
        "--steps",
        "50,101",
        needles=("steps", "101"),
    ),
    case(
        "input-checks-pairwise-with-tolerance",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: prometheus, address: 'http://$refused', checks: [{name: agree, kind: rate, query: a, denominator: b, better: higher, "
        "tolerance: 0.1}]}",
        needles=("metrics.checks.agree", "give `limit`"),
    ),  # fmt: skip
    case(
        "input-checks-drift-with-direction",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: prometheus, address: 'http://$refused', checks: [{name: s, kind: drift, query: 'x{variant}', better: lower}]}",
        needles=("metrics.checks.s.better", "kind rate"),
    ),  # fmt: skip
    case(
        "input-checks-duplicate-name",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: prometheus, address: 'http://$refused', checks: [{name: s, kind: drift, query: 'x{variant}'}, "
        "{name: s, kind: drift, query: 'y{variant}'}]}",
        needles=("two checks are named `s`",),
    ),  # fmt: skip
    case(
        "input-max-model-size-5XB",
        *GATES,
        "--model-uri",
        "models:/churn/1",
        "--max-model-size",
        "5XB",
        needles=("5XB",),
    ),
    case(
        "input-router-yaml-bomb",
        *CANARY,
        "--router",
        "{type: &a [x, x, x, x], a: &b [*a, *a, *a, *a], b: [*b, *b, *b, *b]}",
        needles=("router.type",),
    ),  # fmt: skip
    case("train-missing-command", "train-gpu", "--model-name", "churn", needles=("command",)),
    case(
        "train-command-not-found",
        "train-gpu",
        "--model-name",
        "churn",
        "--command",
        "no-such-trainer --fast",
        "--require-gpu",
        "false",
        needles=("no-such-trainer", "PATH"),
    ),  # fmt: skip
    case(
        "train-negative-timeout",
        "train-gpu",
        "--model-name",
        "churn",
        "--command",
        "true",
        "--timeout-minutes=-5",
        needles=("timeout-minutes",),
    ),  # fmt: skip
    case(
        "train-missing-working-directory",
        "train-gpu",
        "--model-name",
        "churn",
        "--command",
        "true",
        "--working-directory",
        "$work/gone",
        needles=("working-directory",),
    ),  # fmt: skip
    case(
        "train-params-not-yaml",
        "train-gpu",
        "--model-name",
        "churn",
        "--command",
        "true",
        "--params",
        "$corpus/schemas/malformed.yaml",
        "--require-gpu",
        "false",
        needles=("malformed.yaml", "line"),
    ),  # fmt: skip
    # --- model URIs ---
    case("gates-model-uri-missing", *GATES, needles=("model-uri",)),
    case(
        "gates-model-uri-malformed",
        *GATES,
        "--model-uri",
        "s3://bucket/model",
        needles=("s3://bucket/model",),
    ),
    case(
        "gates-model-unknown-version",
        *GATES,
        "--model-uri",
        "models:/churn/99",
        needles=("models:/churn/99",),
    ),
    case(
        "gates-wrong-alias",
        *GATES,
        "--model-uri",
        "models:/churn@champion",
        needles=("models:/churn@champion",),
    ),
    case(
        "gates-corrupted-artifact",
        *GATES,
        "--model-uri",
        "models:/truncated/1",
        needles=("models:/truncated/1", "does not load"),
    ),
    case(
        "gates-corrupted-mlmodel", *GATES, "--model-uri", "models:/garbled/1", needles=("models:/garbled/1",)
    ),
    case(
        "promote-wrong-alias",
        "promote",
        "--model-uri",
        "models:/churn@champion",
        "--alias",
        "production",
        needles=("unknown alias", "champion"),
    ),  # fmt: skip
    case("promote-unknown-model", "promote", "--model-uri", "models:/ghost/1", needles=("ghost",)),
    case(
        "promote-malformed-uri",
        "promote",
        "--model-name",
        "churn",
        "--model-uri",
        "churn:latest",
        needles=("churn:latest",),
    ),
    case(
        "promote-reserved-alias",
        "promote",
        "--model-name",
        "churn",
        "--version",
        "2",
        "--alias",
        "latest",
        needles=("latest", "reserved"),
    ),
    case(
        "promote-unknown-version",
        "promote",
        "--model-name",
        "churn",
        "--version",
        "42",
        needles=("no version 42",),
    ),
    case(
        "promote-ungated-to-production",
        "promote",
        "--model-name",
        "churn",
        "--version",
        "2",
        "--alias",
        "production",
        needles=("gates", "version 2"),
        rc=1,
    ),  # fmt: skip
    case(
        "canary-force-without-reason",
        *CANARY,
        "--router",
        HAPROXY,
        "--force",
        "true",
        needles=("force", "reason"),
    ),
    case(
        "canary-deploy-command-without-model",
        *CANARY,
        "--router",
        HAPROXY,
        "--deploy-command",
        "true",
        needles=("model-name",),
    ),
    case(
        "canary-abort-without-model",
        *CANARY,
        "--router",
        HAPROXY,
        "--mode",
        "abort",
        needles=("abort", "model-name"),
    ),
    case(
        "canary-rollback-without-deploy-command",
        *CANARY,
        "--router",
        HAPROXY,
        "--mode",
        "rollback",
        "--model-name",
        "churn",
        needles=("rollback", "deploy-command"),
    ),  # fmt: skip
    case(
        "canary-rollback-nothing-to-roll-back",
        *CANARY,
        "--router",
        HAPROXY,
        "--mode",
        "rollback",
        "--model-name",
        "churn",
        "--deploy-command",
        "false",
        needles=("cannot roll back", "previous-production"),
        rc=1,
    ),  # fmt: skip
    case(
        "canary-ungated-version",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        PROMETHEUS_DOWN,
        "--model-name",
        "churn",
        "--version",
        "2",
        "--deploy-command",
        "false",
        needles=("version 2", "not passed the quality gates", "force"),
        rc=1,
    ),  # fmt: skip
    case(
        "canary-busy-canary",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        PROMETHEUS_DOWN,
        "--model-name",
        "churn",
        "--version",
        "1",
        "--deploy-command",
        "false",
        "--force",
        "true",
        "--reason",
        "test",
        needles=("canary already has traffic", "canary 30 %", "mode: restore"),
        canary_weight=30,
    ),  # fmt: skip
    case(
        "canary-unknown-model-version",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        PROMETHEUS_DOWN,
        "--model-name",
        "churn",
        "--version",
        "9",
        needles=("9",),
    ),  # fmt: skip
    # --- router and metrics addresses ---
    case(
        "router-refused",
        *CANARY,
        "--router",
        "{type: haproxy, address: '$refused', backend: model, timeout: 1}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router unreachable", "$refused"),
    ),  # fmt: skip
    case(
        "router-timeout",
        *CANARY,
        "--router",
        "{type: haproxy, address: '$silent', backend: model, timeout: 0.3}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router unreachable", "$silent"),
    ),  # fmt: skip
    case(
        "router-wrong-protocol",
        *CANARY,
        "--router",
        "{type: haproxy, address: '$html_address', backend: model, timeout: 1}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router unreachable", "get weight"),
    ),  # fmt: skip
    case(
        "router-http-at-a-tcp-socket",
        *CANARY,
        "--router",
        "{type: http, address: 'http://$haproxy', route: model, timeout: 1}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router unreachable",),
    ),  # fmt: skip
    case(
        "router-html-instead-of-json",
        *CANARY,
        "--router",
        "{type: http, address: '$html', route: model, timeout: 1}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router unreachable", "JSON"),
    ),  # fmt: skip
    case(
        "router-not-an-address",
        *CANARY,
        "--router",
        "{type: haproxy, address: 'haproxy.internal', backend: model}",
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("router.address",),
    ),  # fmt: skip
    case(
        "metrics-refused",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        PROMETHEUS_DOWN,
        needles=("metrics source unreachable", "$refused"),
    ),  # fmt: skip
    case(
        "metrics-timeout",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: http, address: 'http://$silent', timeout: 0.3}",
        needles=("metrics source unreachable",),
    ),  # fmt: skip
    case(
        "metrics-html-instead-of-json",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: prometheus, address: '$html'}",
        needles=("metrics source unreachable", "not JSON"),
    ),  # fmt: skip
    case(
        "metrics-wrong-protocol",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: prometheus, address: 'ftp://$refused'}",
        needles=("metrics.address", "http://"),
    ),  # fmt: skip
    case(
        "metrics-http-at-a-tcp-socket",
        *CANARY,
        "--router",
        HAPROXY,
        "--metrics",
        "{type: http, address: 'http://$haproxy', timeout: 1}",
        needles=("metrics source unreachable",),
    ),  # fmt: skip
    # --- mlcicd local (your repository through act) ---
    case(
        "local-no-workflows",
        "local",
        "--repo",
        "$work",
        "--print",
        needles=("no workflows", ".github/workflows"),
    ),
    case(
        "local-not-a-git-repository",
        "local",
        "--repo",
        "$corpus/local",
        "--print",
        needles=("not a git repository", "git init"),
    ),
    # --- Kubernetes routers (objects on the stand-in API server; nothing may change before exit 2) ---
    case(
        "kube-object-missing",
        *KUBE,
        "{type: gateway-api, namespace: ml, name: nope, kubeconfig: '$kubeconfig'}",
        needles=("router refused", "HTTPRoute ml/nope", "does not exist", "router.name"),
    ),
    case(
        "kube-rule-without-both-backends",
        *KUBE,
        "{type: gateway-api, namespace: ml, name: stable-only, kubeconfig: '$kubeconfig'}",
        needles=("router refused", "both backendRefs `stable` and `canary`"),
    ),
    case(
        "kube-rule-with-the-canary-alone",
        *KUBE,
        "{type: gateway-api, namespace: ml, name: canary-alone, kubeconfig: '$kubeconfig'}",
        needles=("router refused", "rule 1", "without `stable`"),
    ),
    case(
        "kube-no-permission-to-patch",
        *KUBE,
        "{type: gateway-api, namespace: ml, name: churn, kubeconfig: '$kubeconfig_readonly'}",
        needles=("no permission to patch httproutes.gateway.networking.k8s.io `churn`", "verbs [get, patch]"),
    ),
    case(
        "kube-istio-without-the-canary",
        *KUBE,
        "{type: istio, namespace: ml, name: stable-only, kubeconfig: '$kubeconfig'}",
        needles=("router refused", "VirtualService ml/stable-only", "both destinations"),
    ),
    case(
        "kube-kserve-without-model-spec",
        *KUBE,
        "{type: kserve, namespace: ml, name: old-schema, kubeconfig: '$kubeconfig'}",
        "--model-name",
        "churn",
        "--version",
        "1",
        needles=("router refused", "spec.predictor.model"),
    ),
    case(
        "kube-kserve-with-deploy-command",
        *KUBE,
        "{type: kserve, namespace: ml, name: churn, kubeconfig: '$kubeconfig'}",
        "--deploy-command",
        "./deploy.sh",
        "--model-name",
        "churn",
        "--version",
        "1",
        needles=("drop `deploy-command`", "kserve"),
    ),
    case(
        "kube-kubeconfig-not-a-file",
        *KUBE,
        "{type: istio, namespace: ml, name: churn, kubeconfig: '$work/nope.yaml'}",
        needles=("router.kubeconfig", "nope.yaml"),
    ),
    case(
        "kube-api-server-refused",
        *KUBE,
        "{type: gateway-api, namespace: ml, name: churn, kubeconfig: '$kubeconfig_refused', timeout: 1}",
        needles=("router unreachable", "did not answer"),
    ),
    case(
        "kube-router-unknown-key",
        *KUBE,
        "{type: istio, namespace: ml, name: churn, host: churn}",
        needles=("router.host",),
    ),
    case(
        "kube-router-without-name",
        "canary-shift",
        "--config",
        "$corpus/configs/kube_router_without_name.yaml",
        needles=("needs `name`",),
    ),
]


# --- generated inputs ---------------------------------------------------------------------------


def wide_csv(path: Path) -> None:
    path.write_text(
        ",".join(f"c{i}" for i in range(WIDE_COLUMNS)) + "\n" + ",".join("1" * WIDE_COLUMNS) + "\n"
    )


def big_config(path: Path) -> None:
    path.write_text("promote:\n  reason: '" + "x" * (1 << 20) + "'\n")


def deep_config(path: Path) -> None:
    path.write_text("promote:\n  reason: " + "[" * 5000 + "]" * 5000 + "\n")


MAKERS = {
    "wide_csv": (wide_csv, "wide.csv"),
    "big_config": (big_config, "big.yaml"),
    "deep_config": (deep_config, "deep.yaml"),
}


# --- the world the cases run against -------------------------------------------------------------


class HtmlHandler(http.server.BaseHTTPRequestHandler):
    """A web server where an API was expected: 200 and an HTML page for every request."""

    def _page(self) -> None:
        body = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _page

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def html_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_server():
    """Accepts connections (the kernel does, from the backlog) and never answers: a hung peer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def make_registry(home: Path, work: Path) -> None:
    """`churn` v1 @production and v2 @staging (a real pyfunc model), `truncated` v1 whose pickle is
    cut in half, and `garbled` v1 whose MLmodel file is not YAML."""
    import mlflow

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, model_input: list[float]) -> list[int]:
            return [0] * len(model_input)

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("bad-inputs", artifact_location=(home / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
        client.create_registered_model("churn")
        for alias in ("production", "staging"):
            version = client.create_model_version("churn", info.model_uri, run_id=run.info.run_id).version
            client.set_registered_model_alias("churn", alias, version)
        local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(work / "model")))
        for name, damage in (("truncated", "python_model.pkl"), ("garbled", "MLmodel")):
            copy = work / name
            shutil.copytree(local, copy)
            target = copy / damage
            target.write_bytes(
                target.read_bytes()[: target.stat().st_size // 2]
                if damage.endswith(".pkl")
                else b"{{{ not: [yaml"
            )
            client.create_registered_model(name)
            client.create_model_version(name, str(copy), run_id=None)
    finally:
        mlflow.set_tracking_uri(None)


def registry_state(home: Path) -> dict:
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = {m.name: (dict(m.aliases), dict(m.tags)) for m in client.search_registered_models()}
    versions = {(v.name, v.version): dict(v.tags) for v in client.search_model_versions()}
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id: (r.info.status, dict(r.data.tags)) for r in client.search_runs(experiments)}
    return {"models": models, "versions": versions, "runs": runs}


@dataclass
class World:
    home: Path
    places: dict[str, str]
    weights: object
    set_weight: object

    def state(self) -> dict:
        return {"registry": registry_state(self.home), "router": self.weights()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs")
    home = root / "home"
    home.mkdir()
    make_registry(home, root)
    test_data = root / "test.csv"
    test_data.write_text("f0,f1,label\n" + "".join(f"{i % 7}.5,{i % 3}.0,{i % 2}\n" for i in range(50)))
    ok_csv = root / "ok.csv"
    ok_csv.write_text("age,plan,churned\n42.0,basic,0\n")
    with (
        model_servers(root) as servers,
        haproxy(root, *servers) as lb,
        html_server() as html,
        silent_server() as silent,
        kube_stand_in() as api,
    ):
        places = {
            "corpus": str(CORPUS), "test_data": str(test_data), "ok_csv": str(ok_csv), "haproxy": lb.admin_address,
            "html": f"http://{html}", "html_address": html, "silent": silent, "refused": f"127.0.0.1:{free_port()}",
            "kubeconfig": str(api.kubeconfig(root / "kubeconfig", "deployer")),
            "kubeconfig_readonly": str(api.kubeconfig(root / "kubeconfig-readonly", "viewer")),
            "kubeconfig_refused": str(api.kubeconfig(root / "kubeconfig-refused", "deployer", f"http://127.0.0.1:{free_port()}")),
        }  # fmt: skip
        yield World(
            home,
            places,
            lambda: {"haproxy": lb.weights(), "kube": json.loads(json.dumps([*api.objects.values()]))},
            lb.set_weight,
        )


@contextlib.contextmanager
def kube_stand_in():
    """HTTPRoutes, VirtualServices and an InferenceService that a rollout cannot use, on the stand-in API server."""
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"namespace": "ml"},
    }
    service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"namespace": "ml"},
    }
    with KubeApiServer() as api:
        for name, rules in {
            "churn": [{"backendRefs": [{"name": "stable", "weight": 100}, {"name": "canary", "weight": 0}]}],
            "stable-only": [{"backendRefs": [{"name": "stable", "port": 80}]}],
            "canary-alone": [
                {"backendRefs": [{"name": "stable"}, {"name": "canary", "weight": 0}]},
                {"backendRefs": [{"name": "canary"}]},
            ],
        }.items():
            api.apply({**route, "metadata": {"namespace": "ml", "name": name}, "spec": {"rules": rules}})
            api.grant("deployer", ("get", "patch"), "httproutes", name)
        api.grant("viewer", ("get",), "httproutes", "churn")
        api.grant("deployer", ("get", "patch"), "httproutes", "nope")  # the Role names it, the object is gone
        http = [{"route": [{"destination": {"host": "churn", "subset": "stable"}}]}]
        api.apply({**service, "metadata": {"namespace": "ml", "name": "stable-only"}, "spec": {"http": http}})
        api.grant("deployer", ("get", "patch"), "virtualservices", "stable-only")
        old = {"predictor": {"sklearn": {"storageUri": "s3://models/churn/1"}}}
        isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "spec": old}
        api.apply({**isvc, "metadata": {"namespace": "ml", "name": "old-schema"}})
        api.grant("deployer", ("get", "patch"), "inferenceservices", "old-schema")
        yield api


def limit_memory() -> None:
    limit = 3 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def stage_env(world: World, work: Path) -> dict[str, str]:
    out, summary = work / "output", work / "summary"
    out.touch()
    summary.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))}
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(out),
        GITHUB_STEP_SUMMARY=str(summary),
        MLCICD_HOME=str(world.home),
    )
    return env


def run_isolated(args: list[str], world: World, work: Path) -> Result:
    """In a process of its own under a memory limit: for inputs that could take the test run down with them."""
    env = stage_env(world, work)
    proc = subprocess.run(
        [sys.executable, "-m", "mlcicd", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=120,
        preexec_fn=limit_memory,
    )
    return Result(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        parse_outputs((work / "output").read_text()),
        (work / "summary").read_text(),
    )


class Records(logging.Handler):
    """Log records of any library during the run: a traceback logged (not printed) must be seen too."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def run_in_process(args: list[str], world: World, work: Path) -> Result:
    """`mlcicd <args>` through cli.main in this process (MLflow, torch and pandas are imported once for
    the whole table instead of once per case), with this case's environment, cwd and signal handlers
    restored afterwards."""
    import mlflow

    from mlcicd import cli

    env = stage_env(world, work)
    saved_env, saved_cwd, saved_term = dict(os.environ), os.getcwd(), signal.getsignal(signal.SIGTERM)
    stdout, stderr, records = io.StringIO(), io.StringIO(), Records()
    loggers = [logging.getLogger(), logging.getLogger("mlflow")]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(work)
    for logger in loggers:
        logger.addHandler(records)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            warnings.simplefilter("ignore")  # library deprecation noise; pytest would turn it into errors
            rc = cli.main(args)
    finally:
        for logger in loggers:
            logger.removeHandler(records)
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        signal.signal(signal.SIGTERM, saved_term)
        mlflow.set_tracking_uri(None)
    log = stderr.getvalue() + "".join(line + "\n" for line in records.lines)
    return Result(
        rc,
        stdout.getvalue(),
        log,
        parse_outputs((work / "output").read_text()),
        (work / "summary").read_text(),
    )


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, world: World, tmp_path: Path):
    places = {**world.places, "work": str(tmp_path)}
    if case.make:
        maker, name = MAKERS[case.make]
        places["made"] = str(tmp_path / name)
        maker(tmp_path / name)
    args = [Template(a).safe_substitute(places) for a in case.args]
    world.set_weight("canary", case.canary_weight)
    world.set_weight("stable", 100 - case.canary_weight)
    before = world.state()
    try:
        result = (run_isolated if case.memory_limit else run_in_process)(args, world, tmp_path)
    finally:
        after = world.state()
        world.set_weight("canary", 0)
        world.set_weight("stable", 100)
    assert result.rc == case.rc, result.log[-3000:]
    assert len(result.errors) == 1, result.log[-3000:]
    error = result.errors[0]
    for needle in case.needles:
        assert Template(needle).safe_substitute(places).lower() in error.lower(), error
    assert FIX.search(error.partition("::")[2].partition("::")[2]), (
        f"the message says what failed but not what to do: {error}"
    )
    assert "Traceback" not in result.log, result.log
    assert after == before, "the registry or the router changed"


# --- a planted secret ------------------------------------------------------------------------------

SECRETS = {
    "MLFLOW_TRACKING_TOKEN": "planted-token-7f3a91",
    "MLFLOW_TRACKING_PASSWORD": "planted-password-91c2e",
    "MLCICD_ROUTER_TOKEN": "planted-router-55e1b",
    "MLCICD_METRICS_TOKEN": "planted-metrics-0b9d4",
}
TRACKING_SECRETS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")


def assert_masked_first(result: Result, names: tuple[str, ...]) -> None:
    """Each secret is masked before any other line shows it (the runner hides it from then on)."""
    lines = result.stdout.splitlines()
    for name in names:
        secret = SECRETS[name]
        mask = lines.index(f"::add-mask::{secret}") if f"::add-mask::{secret}" in lines else None
        assert mask is not None, f"{name} was never masked:\n{result.stdout[-2000:]}"
        shown = [i for i, line in enumerate(lines) if secret in line and not line.startswith("::add-mask::")]
        assert all(i > mask for i in shown), f"{name} printed before it was masked"
    for secret in SECRETS.values():
        assert (
            secret not in result.stderr
            and secret not in result.summary
            and secret not in json.dumps(result.outputs)
        )


def test_planted_secrets_are_masked_first_and_stored_nowhere(mlflow_server, tmp_path):
    """Tokens and passwords in the environment: masked before anything prints them, and never in a
    report, a step summary, an output, or MLflow (run params, tags, artifacts; model and version tags)."""
    from mlflow import MlflowClient

    from canary_rig import ModelServer, http_router

    shutil.copy(CORPUS.parent / "fixtures" / "train_tiny.py", tmp_path / "train_tiny.py")
    (tmp_path / "params.yaml").write_text("lr: 0.05\nepochs: 20\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "MLFLOW_"))}
    env = {
        **base,
        **SECRETS,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_TRACKING_USERNAME": "ci",
        "MLCICD_HOME": str(tmp_path / "home"),
    }

    def stage(*args: str) -> Result:
        work = tmp_path / f"step-{len(list(tmp_path.glob('step-*')))}"
        work.mkdir()
        out, summary = work / "output", work / "summary"
        out.touch()
        summary.touch()
        step_env = {
            **env,
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "mlcicd", *args],
            env=step_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Result(
            proc.returncode, proc.stdout, proc.stderr, parse_outputs(out.read_text()), summary.read_text()
        )

    # A careless training script prints its token: after the mask, where the runner hides it.
    careless = (
        f"{sys.executable} -c \"import os, runpy, sys; print('using token', os.environ['MLFLOW_TRACKING_TOKEN'], flush=True); "
        "sys.argv = ['train_tiny.py', 'handoff']; runpy.run_path('train_tiny.py', run_name='__main__')\""
    )
    model = f"secret-{os.getpid()}"
    reports = tmp_path / "reports"
    trained = stage(
        "train-gpu", "--command", careless, "--model-name", model, "--require-gpu", "false", "--params", "params.yaml",
        "--report", str(reports / "train.json"),
    )  # fmt: skip
    assert trained.rc == 0, trained.log
    assert f"using token {SECRETS['MLFLOW_TRACKING_TOKEN']}" in trained.stdout  # the script really printed it
    assert_masked_first(trained, TRACKING_SECRETS)
    promoted = stage(
        "promote",
        "--model-uri",
        trained.outputs["model-uri"],
        "--model-name",
        model,
        "--report",
        str(reports / "promote.json"),
    )
    assert promoted.rc == 0, promoted.log
    assert_masked_first(promoted, TRACKING_SECRETS)
    # Restoring stable only talks to the router: its two backends need an address, not a process.
    backends = [ModelServer(variant, free_port(), None) for variant in ("stable", "canary")]
    with http_router(tmp_path, *backends, token=SECRETS["MLCICD_ROUTER_TOKEN"]) as router:
        restored = stage(
            "canary-shift", "--mode", "restore", "--router", f"{{type: http, address: '{router.url}', route: model}}",
            "--model-name", model, "--version", promoted.outputs["version"], "--report", str(reports / "canary.json"),
        )  # fmt: skip
    assert restored.rc == 0, restored.log
    assert_masked_first(restored, ("MLCICD_ROUTER_TOKEN", "MLCICD_METRICS_TOKEN", *TRACKING_SECRETS))

    for report in reports.iterdir():
        assert not any(secret in report.read_text() for secret in SECRETS.values()), report
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(trained.outputs["run-id"])
    stored = [json.dumps(run.data.params), json.dumps(run.data.tags), json.dumps(list(run.data.metrics))]
    artifacts = Path(client.download_artifacts(run.info.run_id, "mlcicd", str(tmp_path / "artifacts")))
    stored += [f.read_text(errors="replace") for f in artifacts.rglob("*") if f.is_file()]
    registered = client.get_registered_model(model)
    stored += [
        json.dumps(registered.tags),
        json.dumps([dict(v.tags) for v in client.search_model_versions(f"name = '{model}'")]),
    ]
    assert len(stored) > 5 and not [text for text in stored for secret in SECRETS.values() if secret in text]

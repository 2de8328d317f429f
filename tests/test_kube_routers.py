"""canary-shift through Kubernetes objects: a Gateway API HTTPRoute, an Istio VirtualService and a
KServe InferenceService, held by a stand-in API server (tests/kube_fake.py; no cluster runs here).

A small reconciler plays the controllers: it reads the object from the stand-in, writes its status
(route `status.parents` conditions, VirtualService `observedGeneration`, InferenceService revisions
and traffic) and applies the resulting split to a real HAProxy in front of two model servers, so each
canary is judged on real traffic through a real Prometheus, as in tests/test_canary_shift.py. Every
scenario reads the weights back from the stand-in at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kube_fake import KubeApiServer

import test_canary_shift
from canary_rig import HAProxy, LoadGenerator, ModelServers, Prometheus, haproxy, model_servers, prometheus
from conftest import parse_outputs
from test_canary_shift import version_tags

pytest.importorskip("kubernetes")
model_version = test_canary_shift.model_version  # the fixture: a registered `churn` version with passed gates

GATEWAY, ISTIO, KSERVE = "gateway.networking.k8s.io", "networking.istio.io", "serving.kserve.io"
TOKEN = "deployer"
ROUTE = {
    "apiVersion": f"{GATEWAY}/v1", "kind": "HTTPRoute", "metadata": {"name": "churn", "namespace": "ml"},
    "spec": {
        "parentRefs": [{"name": "public"}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [
            {"name": "stable", "port": 8080, "weight": 100}, {"name": "canary", "port": 8080, "weight": 0}]}],
    },
}  # fmt: skip
VIRTUAL_SERVICE = {
    "apiVersion": f"{ISTIO}/v1", "kind": "VirtualService", "metadata": {"name": "churn", "namespace": "ml"},
    "spec": {"hosts": ["churn"], "http": [{"route": [
        {"destination": {"host": "churn", "subset": "stable"}, "weight": 100},
        {"destination": {"host": "churn", "subset": "canary"}, "weight": 0}]}]},
}  # fmt: skip
ISVC = {
    "apiVersion": f"{KSERVE}/v1beta1", "kind": "InferenceService", "metadata": {"name": "churn", "namespace": "ml"},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}, "storageUri": "s3://models/churn/1"}}},
}  # fmt: skip


class Reconciler:
    """The controllers' part, every 0.1 s: status for the object's new generation, and its split onto HAProxy."""

    def __init__(self, api: KubeApiServer, lb: HAProxy) -> None:
        self.api, self.lb = api, lb
        self.stopping = threading.Event()
        self.revisions: list[str] = []
        self.rolled_out = self.previous = ""
        self.on_canary: set[str] = set()
        """Revisions the canary server runs (created while another one was rolled out, not yet promoted)."""

    def reset(self) -> None:
        self.revisions, self.rolled_out, self.previous, self.on_canary = [], "", "", set()

    def __enter__(self) -> Reconciler:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            with self.api.lock:
                for key, document in list(self.api.objects.items()):
                    observed = (document.get("status") or {}).get("observedGeneration", 0)
                    if observed >= document["metadata"]["generation"]:
                        continue
                    canary, status = getattr(self, document["kind"].lower())(document)
                    self.lb.set_weight("canary", canary)
                    self.lb.set_weight("stable", 100 - canary)
                    self.api.write_status(
                        key, {**status, "observedGeneration": document["metadata"]["generation"]}
                    )

    def httproute(self, route: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refs = {ref["name"]: ref.get("weight", 1) for ref in route["spec"]["rules"][0]["backendRefs"]}
        generation = route["metadata"]["generation"]
        resolved = set(refs) <= {"stable", "canary"}
        conditions = [
            {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": generation},
            {"type": "ResolvedRefs", "status": "True" if resolved else "False",
             "reason": "ResolvedRefs" if resolved else "BackendNotFound", "observedGeneration": generation},
        ]  # fmt: skip
        parent = {
            "parentRef": {"name": "public"},
            "controllerName": "example.net/gateway-controller",
            "conditions": conditions,
        }
        return round(100 * refs.get("canary", 0) / sum(refs.values())), {"parents": [parent]}

    def virtualservice(self, service: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        route = {
            item["destination"]["subset"]: item.get("weight", 0)
            for item in service["spec"]["http"][0]["route"]
        }
        return route.get("canary", 0), {"conditions": [{"type": "Reconciled", "status": "True"}]}

    def inferenceservice(self, isvc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """KServe on Knative: a new revision for each new storageUri; canaryTrafficPercent splits it with the last
        revision rolled out at 100 %, which it becomes once it has 100 %."""
        predictor = isvc["spec"]["predictor"]
        uri, percent = predictor["model"]["storageUri"], predictor.get("canaryTrafficPercent")
        if not self.revisions or self.revisions[-1].split("|")[1] != uri:
            name = f"churn-predictor-{len(self.revisions) + 1:05d}|{uri}"
            if self.rolled_out:
                self.on_canary.add(name)
            self.revisions.append(name)
        latest = self.revisions[-1]
        if percent is not None and self.rolled_out and self.rolled_out != latest:
            traffic = [(latest, True, percent)] + (
                [(self.rolled_out, False, 100 - percent)] if percent < 100 else []
            )
        else:
            traffic = [(latest, True, 100)]
        if traffic[0][2] == 100 and self.rolled_out != latest:
            self.previous, self.rolled_out = self.rolled_out, latest
        if percent is None:
            self.on_canary.clear()  # promoted: the stable server serves it from now on
        short = {r: r.split("|")[0] for r in self.revisions}
        predictor_status = {
            "latestCreatedRevision": short[latest], "latestReadyRevision": short[latest],
            "latestRolledoutRevision": short.get(self.rolled_out, ""), "previousRolledoutRevision": short.get(self.previous, ""),
            "traffic": [{"revisionName": short[r], "latestRevision": is_latest, "percent": p, "tag": "latest" if is_latest else "prev"}
                        for r, is_latest, p in traffic],
        }  # fmt: skip
        ready = [{"type": kind, "status": "True"} for kind in ("PredictorReady", "Ready")]
        canary = sum(p for r, _, p in traffic if r in self.on_canary)
        return canary, {"components": {"predictor": predictor_status}, "conditions": ready}


@dataclass
class Cluster:
    servers: ModelServers
    lb: HAProxy
    prom: Prometheus
    api: KubeApiServer
    reconciler: Reconciler
    root: Path
    kubeconfig: Path

    def reset(self) -> None:
        with self.api.lock:
            self.api.objects.clear()
            self.api.conflicts = 0
            self.api.log.clear()
            self.reconciler.reset()
            for document in (ROUTE, VIRTUAL_SERVICE, ISVC):
                self.api.apply(document)
        time.sleep(0.3)  # the reconciler's first pass
        self.lb.set_weight("canary", 0)
        self.lb.set_weight("stable", 100)
        for server in self.servers:
            server.set_fault(error_rate=0.0, delay_ms=0.0)

    def args(self, kind: str, *extra: str) -> list[str]:
        return [
            "canary-shift", "--router", f"{{type: {kind}, namespace: ml, name: churn, kubeconfig: '{self.kubeconfig}', timeout: 2}}",
            "--metrics", f"{{type: prometheus, address: '{self.prom.url}'}}",
            "--interval", "2s", "--min-requests", "20", "--steps", "30", *extra,
        ]  # fmt: skip

    def canary_weight(self) -> int:
        return self.lb.weights()["canary"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("kube")
    with (
        model_servers(root, delay_ms=5) as servers,
        haproxy(root, *servers) as lb,
        prometheus(root, list(servers)) as prom,
        KubeApiServer() as api,
        Reconciler(api, lb) as reconciler,
    ):
        for plural in ("httproutes", "virtualservices", "inferenceservices"):
            api.grant(TOKEN, ("get", "patch"), plural, "churn")
        yield Cluster(servers, lb, prom, api, reconciler, root, api.kubeconfig(root / "kubeconfig", TOKEN))


@pytest.fixture
def live(cluster) -> Iterator[tuple[Cluster, LoadGenerator]]:
    cluster.reset()
    with LoadGenerator(cluster.lb.url, rate=250, threads=6) as load:
        yield cluster, load
    cluster.reset()


def route_weights(api: KubeApiServer) -> dict[str, int]:
    return {
        ref["name"]: ref["weight"]
        for ref in api.read(GATEWAY, "ml", "httproutes", "churn")["spec"]["rules"][0]["backendRefs"]
    }


def service_weights(api: KubeApiServer) -> dict[str, int]:
    http = api.read(ISTIO, "ml", "virtualservices", "churn")["spec"]["http"][0]
    return {item["destination"]["subset"]: item["weight"] for item in http["route"]}


WEIGHTS = {"gateway-api": route_weights, "istio": service_weights}


@pytest.mark.parametrize("kind", ["gateway-api", "istio"])
def test_a_healthy_canary_is_promoted_and_a_bad_one_rolled_back(kind, live, model_version, run_cli, tmp_path):
    cluster, load = live
    name, version = model_version
    deployed = tmp_path / "deployed"
    cluster.api.conflicts = (
        2  # another writer changes the object twice under the first patch: 409, re-read, retry
    )
    deploy = [
        "--deploy-command",
        f'echo "$DEPLOY_TARGET" >> {deployed}',
        "--model-name",
        name,
        "--version",
        version,
    ]
    # (one noisy interval on this shared machine is not what this test is about: a second failure would be)
    healthy = run_cli(*cluster.args(kind, *deploy, "--failure-limit", "2"), cwd=tmp_path)
    assert healthy.rc == 0 and healthy.outputs["result"] == "promoted", healthy.log
    assert WEIGHTS[kind](cluster.api) == {"stable": 100, "canary": 0} and cluster.canary_weight() == 0
    assert deployed.read_text().split() == ["canary", "stable"]
    steps = json.loads((tmp_path / healthy.outputs["report"]).read_text())["steps"]
    assert [s["weight"] for s in steps] == [30, 100, 0]
    assert steps[0]["checks"][-1]["canary"]["requests"] >= 20  # judged on real traffic the reconciler routed
    statuses = [code for method, _, code in cluster.api.log if method == "PATCH"]
    assert statuses.count(409) == 2 and statuses.count(200) >= 4, statuses
    assert {content for method, content, _ in cluster.api.log if method == "PATCH"} == {
        "application/json-patch+json"
    }

    cluster.servers.canary.set_fault(error_rate=0.3)
    bad = run_cli(*cluster.args(kind), cwd=tmp_path)
    assert bad.rc == 1 and bad.outputs["result"] == "rolled-back", bad.log
    assert len(bad.errors) == 1 and "error rate" in bad.errors[0]
    assert WEIGHTS[kind](cluster.api) == {"stable": 100, "canary": 0} and cluster.canary_weight() == 0
    time.sleep(0.6)
    assert load.split(time.time() - 0.5).get("canary", 0) == 0


def test_kserve_deploys_the_registry_version_promotes_it_and_rolls_a_bad_one_back(
    live, model_version, embedded_home, run_cli
):
    cluster, load = live
    name, version = model_version
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{embedded_home / 'mlflow.db'}")
    try:
        client = MlflowClient()
        uri = client.get_model_version_download_uri(name, version)
        (embedded_home / "v2").mkdir()
        second = str(client.create_model_version(name, source=str(embedded_home / "v2"), run_id=None).version)
        client.set_model_version_tag(name, second, "mlcicd.gates.passed", "true")
        uri2 = client.get_model_version_download_uri(name, second)
    finally:
        mlflow.set_tracking_uri(None)
    healthy = run_cli(*cluster.args("kserve", "--model-name", name, "--version", version), cwd=cluster.root)
    assert healthy.rc == 0 and healthy.outputs["result"] == "promoted", healthy.log
    isvc = cluster.api.read(KSERVE, "ml", "inferenceservices", "churn")
    predictor = isvc["status"]["components"]["predictor"]
    assert (
        isvc["spec"]["predictor"]["model"]["storageUri"] == uri
        and "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    )
    assert predictor["latestRolledoutRevision"] == "churn-predictor-00002" == predictor["latestReadyRevision"]
    assert predictor["traffic"] == [
        {"revisionName": "churn-predictor-00002", "latestRevision": True, "percent": 100, "tag": "latest"}
    ]
    steps = json.loads((cluster.root / healthy.outputs["report"]).read_text())["steps"]
    assert [s["weight"] for s in steps] == [30, 100, 0] and steps[0]["checks"][-1]["canary"]["requests"] >= 20
    assert cluster.canary_weight() == 0

    cluster.servers.canary.set_fault(error_rate=0.3)
    bad = run_cli(*cluster.args("kserve", "--model-name", name, "--version", second), cwd=cluster.root)
    assert bad.rc == 1 and bad.outputs["result"] == "rolled-back", bad.log
    isvc = cluster.api.read(KSERVE, "ml", "inferenceservices", "churn")
    predictor = isvc["status"]["components"]["predictor"]
    assert (
        isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
        and isvc["spec"]["predictor"]["model"]["storageUri"] == uri2
    )
    assert (
        predictor["latestRolledoutRevision"] == "churn-predictor-00002"
    )  # the previous revision keeps everything
    assert {t["revisionName"]: t["percent"] for t in predictor["traffic"]} == {
        "churn-predictor-00003": 0,
        "churn-predictor-00002": 100,
    }
    assert cluster.canary_weight() == 0
    assert version_tags(embedded_home, name, second)["mlcicd.canary.state"] == "rolled-back"


def test_api_server_lost_mid_rollout_then_restore_puts_stable_back(live, tmp_path, run_cli):
    cluster, load = live
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(tmp_path / "summary"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcicd", *cluster.args("gateway-api", "--interval", "4s"), "--report", str(tmp_path / "r.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while cluster.canary_weight() != 30:
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stdout.read() if proc.poll() is not None else "timeout"
        )
        time.sleep(0.05)
    cluster.api.stop()
    try:
        log, _ = proc.communicate(timeout=90)
    finally:
        cluster.api.start()
    assert proc.returncode == 1, log
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "traffic state unknown" in errors[0] and "mode: restore" in errors[0], log
    assert "result" not in parse_outputs(out.read_text())  # the action's restore step runs on this
    assert route_weights(cluster.api) == {
        "stable": 70,
        "canary": 30,
    }  # nothing could change while it was gone
    restored = run_cli(*cluster.args("gateway-api", "--mode", "restore"), cwd=tmp_path)
    assert restored.rc == 0 and restored.outputs["result"] == "rolled-back", restored.log
    assert route_weights(cluster.api) == {"stable": 100, "canary": 0}
    time.sleep(0.5)
    assert cluster.canary_weight() == 0


def test_shadow_mirrors_through_the_route_filter_and_the_virtual_service(tmp_path):
    """The mirror settings each API defines, written and read back (HAProxy cannot mirror, so no traffic here)."""
    from mlcicd.routers import Weights, make_router, router_spec

    with KubeApiServer() as api:
        api.grant(TOKEN, ("get", "patch"), "httproutes", "churn")
        api.grant(TOKEN, ("get", "patch"), "virtualservices", "churn")
        api.apply(ROUTE)
        api.apply(VIRTUAL_SERVICE)
        config = api.kubeconfig(tmp_path / "kubeconfig", TOKEN)
        for kind in ("gateway-api", "istio"):
            router = make_router(
                router_spec(f"{{type: {kind}, namespace: ml, name: churn, kubeconfig: '{config}'}}")
            )
            assert router.supports_shadow and router.set(Weights(0, shadow=100)) == Weights(0, shadow=100)
            if kind == "gateway-api":
                rule = api.read(GATEWAY, "ml", "httproutes", "churn")["spec"]["rules"][0]
                assert rule["filters"] == [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {"backendRef": {"name": "canary", "port": 8080}, "percent": 100},
                    }
                ]
            else:
                http = api.read(ISTIO, "ml", "virtualservices", "churn")["spec"]["http"][0]
                assert http["mirror"] == {"host": "churn", "subset": "canary"} and http[
                    "mirrorPercentage"
                ] == {"value": 100.0}
            assert router.set(Weights(100)) == Weights(100)
            assert router.set(Weights(0)) == Weights(0)
        assert (
            "filters" not in api.read(GATEWAY, "ml", "httproutes", "churn")["spec"]["rules"][0]
            or not api.read(GATEWAY, "ml", "httproutes", "churn")["spec"]["rules"][0]["filters"]
        )
        assert "mirror" not in api.read(ISTIO, "ml", "virtualservices", "churn")["spec"]["http"][0]

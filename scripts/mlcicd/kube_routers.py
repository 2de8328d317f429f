"""Routers on Kubernetes objects: a Gateway API HTTPRoute and an Istio VirtualService.

- `gateway-api`: every rule of the HTTPRoute (`gateway.networking.k8s.io/v1`) that lists the stable
  and the canary `backendRefs` (by Service name) gets weights `100 - w` and `w`; shadow is a
  `RequestMirror` filter to the canary with `percent`. A change is done once each parent that the
  route's implementation reports in `status.parents` has Accepted and ResolvedRefs True for the new
  `metadata.generation` (an implementation that reports no status is taken at its word).
- `istio`: every HTTP route of the VirtualService (`networking.istio.io/v1`) with both destinations
  (matched by `subset`, or by `host` where there is no subset) gets those weights; shadow is `mirror`
  with `mirrorPercentage`. Where istiod writes status, the change waits for its `observedGeneration`.

The weights read back are the object's own (the spec the API server holds). Writes are JSON patches
with the resourceVersion they were computed from (mlcicd.kube).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlcicd.kube import KubeObject, Patch, Resource, api_client, conditions, generation, wait_until
from mlcicd.router_base import Router, RouterError, RouterRefused, Weights

HTTPROUTE = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
VIRTUALSERVICE = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")
STATUS_WAIT = 30.0
"""Seconds the route's controller may take to report a change as accepted."""
Pair = tuple[int, int, int]
"""(index of the rule or HTTP route, index of the stable backend, index of the canary backend)."""


class KubeRouter(Router):
    resource = HTTPROUTE
    supports_shadow = True

    def __init__(self, spec: Mapping[str, Any], stable: str, canary: str, timeout: float) -> None:
        super().__init__(stable, canary, timeout)
        self.namespace, self.name = str(spec["namespace"]), str(spec["name"])
        self.kubeconfig, self.context = str(spec.get("kubeconfig") or ""), str(spec.get("context") or "")
        self._object: KubeObject | None = None

    @property
    def object(self) -> KubeObject:
        """Credentials are loaded at the first call, so a bad kubeconfig is a message, not a crash at parse
        time."""
        if self._object is None:
            self._object = KubeObject(
                self.resource,
                self.namespace,
                self.name,
                api_client(self.kubeconfig, self.context),
                self.timeout,
            )
        return self._object

    def describe(self) -> str:
        return f"the {self.resource.kind} {self.namespace}/{self.name}"

    def preflight(self) -> None:
        """The object exists, has what a rollout needs, and the account may patch it (a dry-run patch)."""
        self.check(self.object.get())
        self.object.patch([{"op": "test", "path": "/metadata/name", "value": self.name}], dry_run=True)

    def check(self, document: dict[str, Any]) -> None:
        self.pairs(document)

    def pairs(self, document: dict[str, Any]) -> list[Pair]:
        raise NotImplementedError

    def settled(self, document: dict[str, Any], wanted: int) -> str | None:
        raise NotImplementedError

    def wait_settled(self, written: dict[str, Any]) -> None:
        wanted = generation(written)
        wait_until(
            lambda: self.settled(self.object.get(), wanted),
            STATUS_WAIT,
            f"{self.describe()} generation {wanted}",
        )


def _weight(item: Mapping[str, Any]) -> int:
    try:
        return int(item.get("weight", 0) or 0)
    except (TypeError, ValueError):
        raise RouterError(f"weight {item.get('weight')!r} is not a number") from None


def _split(stable: int, canary: int, where: str) -> float:
    if stable + canary <= 0:
        raise RouterError(f"{where}: both the stable and the canary weight are 0, nothing serves traffic")
    return round(100 * canary / (stable + canary), 6)


def _one(values: list[Weights], where: str) -> Weights:
    if len(set(values)) > 1:
        raise RouterError(f"{where}: its rules disagree ({', '.join(v.describe() for v in values)})")
    return values[0]


class RouteRouter(KubeRouter):
    """Weights on every rule (`collection`) that lists both targets (`targets`, each with a `weight`)."""

    collection, targets = "rules", "backendRefs"
    noun, listed, hint = "rule", "backendRefs", "the Services' names"

    def matches(self, target: dict[str, Any], name: str) -> bool:
        raise NotImplementedError

    def pairs(self, document: dict[str, Any]) -> list[Pair]:
        found: list[Pair] = []
        for i, item in enumerate(document.get("spec", {}).get(self.collection) or []):
            targets = [t for t in item.get(self.targets) or [] if isinstance(t, dict)]
            stable = [j for j, t in enumerate(targets) if self.matches(t, self.stable)]
            canary = [j for j, t in enumerate(targets) if self.matches(t, self.canary)]
            if stable and canary:
                found.append((i, stable[0], canary[0]))
            elif canary:
                raise RouterRefused(
                    f"{self.noun} {i} of {self.describe()} sends traffic to `{self.canary}` without "
                    f"`{self.stable}`; "
                    f"give every {self.noun} that lists the canary both {self.listed}"
                )
        if not found:
            raise RouterRefused(
                f"no {self.noun} of {self.describe()} lists both {self.listed} `{self.stable}` and "
                f"`{self.canary}`; add them "
                f"to one {self.noun} (see docs/actions/canary-shift.md), or set `router.stable` / "
                f"`router.canary` to {self.hint}"
            )
        return found

    def weights_of(self, document: dict[str, Any]) -> Weights:
        items, found = document["spec"][self.collection], []
        for i, s, c in self.pairs(document):
            refs = items[i][self.targets]
            found.append(
                Weights(_split(_weight(refs[s]), _weight(refs[c]), self.describe()), self.mirrored(items[i]))
            )
        return _one(found, self.describe())

    def read(self) -> Weights:
        return self.weights_of(self.object.get())

    def _write(self, weights: Weights) -> None:
        def change(document: dict[str, Any]) -> Patch | None:
            if self.weights_of(document) == weights:
                return None
            ops: list[dict[str, Any]] = []
            canary = round(weights.canary)
            for i, s, c in self.pairs(document):
                base = f"/spec/{self.collection}/{i}"
                ops += [
                    {"op": "add", "path": f"{base}/{self.targets}/{s}/weight", "value": 100 - canary},
                    {"op": "add", "path": f"{base}/{self.targets}/{c}/weight", "value": canary},
                    *self.mirror_ops(document["spec"][self.collection][i], base, c, weights.shadow),
                ]
            return ops

        self.wait_settled(self.object.update(change))

    def mirrored(self, item: dict[str, Any]) -> float:
        raise NotImplementedError

    def mirror_ops(self, item: dict[str, Any], base: str, canary: int, shadow: float) -> list[dict[str, Any]]:
        raise NotImplementedError


class GatewayApiRouter(RouteRouter):
    kind = "gateway-api"
    resource = HTTPROUTE

    def matches(self, target: dict[str, Any], name: str) -> bool:
        return bool(target.get("name") == name)

    def _mirrors_canary(self, item: dict[str, Any]) -> bool:
        ref = (item.get("requestMirror") or {}).get("backendRef") or {}
        return item.get("type") == "RequestMirror" and ref.get("name") == self.canary

    def mirrored(self, item: dict[str, Any]) -> float:
        for found in item.get("filters") or []:
            if self._mirrors_canary(found):
                mirror = found["requestMirror"]
                if "percent" in mirror:
                    return float(mirror["percent"])
                fraction = mirror.get("fraction")
                if isinstance(fraction, dict):
                    return (
                        100
                        * float(fraction.get("numerator", 0))
                        / float(fraction.get("denominator", 100) or 100)
                    )
                return 100.0
        return 0.0

    def mirror_ops(self, item: dict[str, Any], base: str, canary: int, shadow: float) -> list[dict[str, Any]]:
        filters = [f for f in item.get("filters") or [] if not self._mirrors_canary(f)]
        if shadow:
            ref = {
                k: v
                for k, v in item["backendRefs"][canary].items()
                if k in ("group", "kind", "name", "namespace", "port")
            }
            filters.append(
                {"type": "RequestMirror", "requestMirror": {"backendRef": ref, "percent": round(shadow)}}
            )
        if filters == (item.get("filters") or []):
            return []
        return [{"op": "add", "path": f"{base}/filters", "value": filters}]

    def settled(self, document: dict[str, Any], wanted: int) -> str | None:
        """Accepted and ResolvedRefs for `wanted` from every parent the implementation reports."""
        for parent in document.get("status", {}).get("parents") or []:
            who = (
                f"{parent.get('controllerName') or 'the controller'} for "
                f"{(parent.get('parentRef') or {}).get('name', '?')}"
            )
            found = conditions(parent)
            for kind in ("Accepted", "ResolvedRefs"):
                condition = found.get(kind)
                if condition is None or int(condition.get("observedGeneration") or 0) < wanted:
                    return f"{who} has not reported {kind} for it yet"
                if condition.get("status") != "True":
                    raise RouterError(
                        f"{who} reports {kind} {condition.get('status')} for generation {wanted} of "
                        f"{self.describe()} "
                        f"({condition.get('reason', '')}: {condition.get('message', '')})"
                    )
        return None


class IstioRouter(RouteRouter):
    kind = "istio"
    resource = VIRTUALSERVICE
    collection, targets = "http", "route"

    noun, listed, hint = "HTTP route", "destinations", "the destinations' subsets (or hosts without a subset)"

    def _is(self, destination: Any, name: str) -> bool:
        if not isinstance(destination, dict):
            return False
        return bool(
            destination.get("subset") == name
            or (not destination.get("subset") and destination.get("host") == name)
        )

    def matches(self, target: dict[str, Any], name: str) -> bool:
        return self._is(target.get("destination"), name)

    def mirrored(self, item: dict[str, Any]) -> float:
        if not self._is(item.get("mirror"), self.canary):
            return 0.0
        percentage = item.get("mirrorPercentage")
        return float(percentage.get("value", 100.0)) if isinstance(percentage, dict) else 100.0

    def mirror_ops(self, item: dict[str, Any], base: str, canary: int, shadow: float) -> list[dict[str, Any]]:
        if shadow:
            return [
                {"op": "add", "path": f"{base}/mirror", "value": dict(item["route"][canary]["destination"])},
                {"op": "add", "path": f"{base}/mirrorPercentage", "value": {"value": float(shadow)}},
            ]
        if not self._is(item.get("mirror"), self.canary):
            return []
        return [
            {"op": "remove", "path": f"{base}/{key}"} for key in ("mirror", "mirrorPercentage") if key in item
        ]

    def settled(self, document: dict[str, Any], wanted: int) -> str | None:
        """istiod writes `status.observedGeneration` (and a Reconciled condition) only with status enabled."""
        status = document.get("status") or {}
        if "observedGeneration" not in status:
            return None
        if int(status.get("observedGeneration") or 0) < wanted:
            return "istiod has not reconciled it yet"
        reconciled = conditions(status).get("Reconciled")
        if reconciled is not None and reconciled.get("status") == "False":
            raise RouterError(
                f"istiod reports {self.describe()} not reconciled: {reconciled.get('message', '')}"
            )
        return None

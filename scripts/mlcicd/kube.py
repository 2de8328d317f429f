"""The Kubernetes API for the gateway-api, istio and kserve routers: credentials, reads, and
writes that never overwrite someone else's change.

- Credentials: `router.kubeconfig` (a path), else `MLCICD_KUBECONFIG` (the kubeconfig's text, e.g.
  from a GitHub secret), else `KUBECONFIG` / `~/.kube/config`, else the in-cluster service account.
- Reads are GETs; writes are PATCHes (JSON merge patch or JSON patch) that carry the
  `metadata.resourceVersion` they were computed from, so the API server answers 409 Conflict when
  the object changed in between; the change is then computed again from a fresh read.
- The API's `Status` answers become messages: a 403 names the verb and the resource the Role lacks,
  a 404 the missing object. Those are RouterRefused (permanent: no retry, exit 2 before traffic
  moves); an API server that does not answer is a RouterError (retried, then restored).

The official `kubernetes` client is an optional extra (`pip install 'ml-cicd[kubernetes]'`),
imported only when one of these routers is used.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd.router_base import RouterError, RouterRefused

KUBECONFIG_ENV = "MLCICD_KUBECONFIG"
"""The text of a kubeconfig (a secret holding one); masked before anything can print it."""
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CONFLICT_RETRIES = 5
Patch = dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def qualified(self) -> str:
        """`httproutes.gateway.networking.k8s.io`: how RBAC and the API's messages name it."""
        return f"{self.plural}.{self.group}"


def api_client(kubeconfig: str, context: str) -> Any:
    """A `kubernetes.client.ApiClient` from the first credentials found (see the module doc)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise RouterRefused(
            "the Kubernetes routers need the official client: install the `kubernetes` extra "
            "(`pip install 'ml-cicd[kubernetes]'`, or the setup action with `extras: kubernetes`)"
        ) from None
    text = os.environ.get(KUBECONFIG_ENV, "").strip()
    try:
        if kubeconfig:
            if not Path(kubeconfig).expanduser().is_file():
                raise RouterRefused(
                    f"`router.kubeconfig` {kubeconfig!r} is not a file; give the path of a kubeconfig"
                )
            return config.new_client_from_config(
                str(Path(kubeconfig).expanduser()), context or None, persist_config=False
            )
        if text:
            import yaml

            document = yaml.safe_load(text)
            if not isinstance(document, dict):
                raise RouterRefused(
                    f"{KUBECONFIG_ENV} is not a kubeconfig (a YAML mapping); set it to the file's text"
                )
            return config.new_client_from_config_dict(document, context or None, persist_config=False)
        default = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
            Path.home() / ".kube" / "config"
        )
        if Path(default).expanduser().is_file():
            return config.new_client_from_config(default, context or None, persist_config=False)
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    except config.ConfigException as exc:
        raise RouterRefused(
            f"no usable Kubernetes credentials ({exc}); set `router.kubeconfig`, {KUBECONFIG_ENV} (a secret "
            "holding a "
            "kubeconfig) or KUBECONFIG, or run inside the cluster with a service account"
        ) from None


class KubeObject:
    """One namespaced custom object, read and patched through the official client."""

    def __init__(self, resource: Resource, namespace: str, name: str, client: Any, timeout: float) -> None:
        self.resource, self.namespace, self.name, self.timeout = resource, namespace, name, timeout
        self.client = client
        self._api: Any = None

    def describe(self) -> str:
        return (
            f"{self.resource.kind} {self.namespace}/{self.name} "
            f"({self.resource.group}/{self.resource.version})"
        )

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client

            self._api = client.CustomObjectsApi(self.client)
        return self._api

    def _call(self, verb: str, call: Callable[[], Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            document = call()
        except ApiException as exc:
            raise self._refusal(verb, exc) from None
        except Exception as exc:  # noqa: BLE001 - urllib3 and socket errors: the API server did not answer
            raise RouterError(
                f"{verb} {self.describe()}: the API server did not answer ({type(exc).__name__})"
            ) from None
        if not isinstance(document, dict):
            raise RouterError(f"{verb} {self.describe()} returned {type(document).__name__}, not an object")
        return document

    def _refusal(self, verb: str, exc: Any) -> RouterError:
        status = _status(exc)
        code = int(getattr(exc, "status", 0) or 0)
        message = str(status.get("message") or getattr(exc, "reason", "") or "").strip()
        if code == 403:
            return RouterRefused(
                f"no permission to {verb} {self.resource.qualified} `{self.name}` in namespace "
                f"{self.namespace} "
                f"({message}); give the account a Role rule with apiGroups [{self.resource.group}], "
                "resources "
                f"[{self.resource.plural}], resourceNames [{self.name}], verbs [get, patch] (see "
                "docs/actions/canary-shift.md)"
            )
        if code == 401:
            return RouterRefused(
                f"{verb} {self.describe()}: the API server did not accept the credentials (401); check the "
                "kubeconfig"
            )
        if code == 404:
            return RouterRefused(
                f"{self.describe()} does not exist ({message or 'not found'}); check `router.namespace` and "
                "`router.name`, "
                "and that the resource's CRD is installed"
            )
        if code == 409:
            return Conflict(message)
        if code in (400, 415, 422):
            return RouterRefused(f"the API server refused to {verb} {self.describe()}: HTTP {code} {message}")
        return RouterError(f"{verb} {self.describe()}: HTTP {code} {message}".strip())

    def get(self) -> dict[str, Any]:
        r = self.resource
        return self._call(
            "get",
            lambda: self.api.get_namespaced_custom_object(
                r.group, r.version, self.namespace, r.plural, self.name, _request_timeout=self.timeout
            ),
        )

    def patch(self, body: Patch, *, dry_run: bool = False) -> dict[str, Any]:
        r = self.resource
        content = JSON_PATCH if isinstance(body, list) else MERGE_PATCH
        return self._call(
            "patch",
            lambda: self.api.patch_namespaced_custom_object(
                r.group,
                r.version,
                self.namespace,
                r.plural,
                self.name,
                body,
                dry_run="All" if dry_run else None,
                _request_timeout=self.timeout,
                _content_type=content,
            ),  # fmt: skip
        )

    def update(
        self, change: Callable[[dict[str, Any]], Patch | None], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Read, compute the patch from what was read, send it with that resourceVersion; on 409 Conflict,
        read again. `change` returns None when the object already is as wanted (then nothing is sent)."""
        for _ in range(CONFLICT_RETRIES):
            current = self.get()
            body = change(current)
            if body is None:
                return current
            version = str(current.get("metadata", {}).get("resourceVersion", ""))
            if isinstance(body, list):
                body = [{"op": "replace", "path": "/metadata/resourceVersion", "value": version}, *body]
            else:
                body = {**body, "metadata": {**body.get("metadata", {}), "resourceVersion": version}}
            try:
                return self.patch(body, dry_run=dry_run)
            except Conflict:
                time.sleep(0.1)
        raise RouterError(
            f"{self.describe()} kept changing under {CONFLICT_RETRIES} attempts to patch it (409 Conflict)"
        )


class Conflict(RouterError):
    """409: the object changed since it was read."""


def _status(exc: Any) -> dict[str, Any]:
    """The `Status` object the API server answers an error with, if the body is one."""
    try:
        document = json.loads(getattr(exc, "body", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def generation(document: dict[str, Any]) -> int:
    try:
        return int(document.get("metadata", {}).get("generation") or 0)
    except (TypeError, ValueError):
        return 0


def conditions(holder: Any) -> dict[str, dict[str, Any]]:
    """`status.conditions` (or a parent's) by type."""
    found = holder.get("conditions") if isinstance(holder, dict) else None
    return {str(c.get("type")): c for c in found or [] if isinstance(c, dict)}


def wait_until(check: Callable[[], str | None], wait: float, what: str) -> None:
    """Poll `check` (None: done; else what it is waiting for) until done or `wait` seconds pass."""
    deadline = time.monotonic() + wait
    while True:
        pending = check()
        if pending is None:
            return
        if time.monotonic() >= deadline:
            raise RouterError(f"{what}: {pending} after {wait:g} s")
        time.sleep(0.2)

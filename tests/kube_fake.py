"""A stand-in Kubernetes API server for namespaced custom objects, on loopback (no cluster runs here).

It follows the API's documented contract for what canary-shift's Kubernetes routers use:
- `GET` and `PATCH /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}`, bearer-token auth (401);
- PATCH with `application/merge-patch+json` (RFC 7386) and `application/json-patch+json` (RFC 6902:
  add, remove, replace, test), any other type 415; `?dryRun=All` validates without storing;
- `metadata.resourceVersion` changes with every stored change; a patch that carries an older one is
  409 Conflict; `metadata.generation` increments when `spec` changes (status writes leave it alone);
- errors are `Status` objects (reason NotFound, Forbidden, Conflict, Invalid, UnsupportedMediaType)
  with the API server's own message wording, e.g. `... is forbidden: User "x" cannot patch resource
  "httproutes" in API group "gateway.networking.k8s.io" in the namespace "ml"`;
- RBAC per token: (verb, plural, name) grants, as a Role with resourceNames gives them.

`conflicts = n` makes the next n patches meet a concurrent writer (another field manager changes a label
first), as a busy cluster would. Controllers (status, traffic) are the tests' own reconcilers.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from conftest import free_port

Key = tuple[str, str, str, str]  # group, namespace, plural, name


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class PatchError(Exception):
    pass


def _walk(document: Any, path: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    if not parts:
        raise PatchError(f"path {path!r} is the whole document")
    node = document
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"path {path!r} does not exist") from None
    return node, parts[-1]


def json_patch(document: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    document = copy.deepcopy(document)
    for op in operations:
        parent, last = _walk(document, str(op.get("path", "")))
        kind = op.get("op")
        try:
            if kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != op.get("value"):
                    raise PatchError(f"testing value {op.get('path')} failed")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = op["value"]
                elif last not in parent:
                    raise PatchError(
                        f"replace operation does not apply: doc is missing key: {op.get('path')}"
                    )
                else:
                    parent[last] = op["value"]
            elif kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), op["value"])
                else:
                    parent[last] = op["value"]
            else:
                raise PatchError(f"operation {kind!r} is not supported here")
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"{kind} operation does not apply at {op.get('path')}") from None
    return document


class KubeApiServer:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.grants: dict[str, set[tuple[str, str, str]]] = {}
        self.lock = threading.RLock()
        self.version = 1000
        self.conflicts = 0
        self.log: list[tuple[str, str, int]] = []
        """(method, content type, status) of every request."""
        self.port = free_port()
        self.server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the cluster's contents (what kubectl apply / a controller would do) --

    def _bump(self, document: dict[str, Any]) -> None:
        self.version += 1
        document["metadata"]["resourceVersion"] = str(self.version)

    def apply(self, document: dict[str, Any]) -> None:
        group = document["apiVersion"].split("/")[0]
        meta = document["metadata"]
        plural = {
            "HTTPRoute": "httproutes",
            "VirtualService": "virtualservices",
            "InferenceService": "inferenceservices",
        }
        key = (group, meta["namespace"], plural[document["kind"]], meta["name"])
        with self.lock:
            stored = copy.deepcopy(document)
            stored["metadata"]["generation"] = 1
            self._bump(stored)
            self.objects[key] = stored

    def read(self, group: str, namespace: str, plural: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[(group, namespace, plural, name)])

    def write_status(self, key: Key, status: dict[str, Any]) -> None:
        """The /status subresource as a controller writes it: no generation change."""
        with self.lock:
            self.objects[key]["status"] = copy.deepcopy(status)
            self._bump(self.objects[key])

    def grant(self, token: str, verbs: tuple[str, ...], plural: str, name: str) -> None:
        self.grants.setdefault(token, set()).update((verb, plural, name) for verb in verbs)

    def kubeconfig(self, path: Path, token: str, server: str | None = None) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            f"clusters:\n- name: stand-in\n  cluster:\n    server: {server or self.url}\n"
            "contexts:\n- name: test\n  context: {cluster: stand-in, user: deployer, namespace: ml}\n"
            f"users:\n- name: deployer\n  user:\n    token: {token}\n"
        )
        return path

    # -- serving --

    def start(self) -> KubeApiServer:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """The API server goes away: its port refuses connections until start() again."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status(
        self, code: int, reason: str, message: str, key: Key | None = None
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": message, "reason": reason, "code": code}  # fmt: skip
        if key:
            body["details"] = {"name": key[3], "group": key[0], "kind": key[2]}
        return code, body

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        url = urllib.parse.urlsplit(path)
        parts = url.path.strip("/").split("/")
        token = str(headers.get("Authorization", "")).removeprefix("Bearer ").strip()
        if token not in self.grants:
            return self.status(401, "Unauthorized", "Unauthorized")
        if len(parts) != 7 or parts[0] != "apis" or parts[3] != "namespaces":
            return self.status(404, "NotFound", "the server could not find the requested resource")
        _, group, _version, _, namespace, plural, name = parts
        key = (group, namespace, plural, name)
        verb = {"GET": "get", "PATCH": "patch"}.get(method, method.lower())
        if (verb, plural, name) not in self.grants[token]:
            return self.status(
                403, "Forbidden",
                f'{plural}.{group} "{name}" is forbidden: User "system:serviceaccount:ml:{token}" cannot {verb} resource '
                f'"{plural}" in API group "{group}" in the namespace "{namespace}"', key,
            )  # fmt: skip
        with self.lock:
            if key not in self.objects:
                return self.status(404, "NotFound", f'{plural}.{group} "{name}" not found', key)
            if method == "GET":
                return 200, copy.deepcopy(self.objects[key])
            if method != "PATCH":
                return self.status(405, "MethodNotAllowed", f"{method} is not supported here")
            return self._patch(
                key, str(headers.get("Content-Type", "")).split(";")[0], body, "dryRun=All" in url.query
            )

    def _patch(self, key: Key, content: str, body: bytes, dry_run: bool) -> tuple[int, dict[str, Any]]:
        current = self.objects[key]
        if self.conflicts and not dry_run:
            self.conflicts -= 1
            current["metadata"].setdefault("labels", {})["touched-by"] = "another-writer"
            self._bump(current)
        try:
            document = json.loads(body)
            if content == "application/merge-patch+json":
                patched = merge_patch(current, document)
            elif content == "application/json-patch+json":
                patched = json_patch(current, document)
            else:
                return self.status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got {content})",
                )
        except (ValueError, PatchError) as exc:
            return self.status(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}", key
            )
        sent = patched["metadata"].get("resourceVersion")
        if sent != current["metadata"]["resourceVersion"]:
            return self.status(
                409, "Conflict",
                f'Operation cannot be fulfilled on {key[2]}.{key[0]} "{key[3]}": the object has been modified; '
                "please apply your changes to the latest version and try again", key,
            )  # fmt: skip
        patched["status"] = current.get("status", {})
        if patched.get("spec") != current.get("spec"):
            patched["metadata"]["generation"] = current["metadata"]["generation"] + 1
        if dry_run or patched == current:
            return 200, copy.deepcopy(patched)
        self._bump(patched)
        self.objects[key] = patched
        return 200, copy.deepcopy(patched)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code, document = api.handle(self.command, self.path, self.headers, self.rfile.read(length))
                api.log.append((self.command, str(self.headers.get("Content-Type", "")), code))
                payload = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = do_PUT = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler

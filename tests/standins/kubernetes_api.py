"""A local stand-in for the Kubernetes apps/v1 Deployments API, for the real ``kubernetes`` client.

Serves ``GET``/``PATCH``/``PUT /apis/apps/v1/namespaces/{ns}/deployments/{name}`` over plain HTTP and
behaves like the API server where the rollout code depends on it:

- strategic-merge patches (``application/strategic-merge-patch+json``): maps merge recursively, ``null``
  deletes a key, ``containers`` and ``env`` lists merge by ``name``, ``{"name": X, "$patch": "delete"}``
  removes an element (what ``kubectl set env deploy/x NAME-`` sends), ``$setElementOrder/…`` directives
  are accepted; merge patches (``application/merge-patch+json``) replace lists;
- ``metadata.generation`` increases when the spec changes, ``resourceVersion`` on every write, ``PUT``
  with a stale ``resourceVersion`` gets 409;
- rollout progress is simulated one step per read of the Deployment: ``status.observedGeneration``
  catches up, then ``updatedReplicas`` and ``availableReplicas`` grow to ``spec.replicas`` and the
  ``Progressing`` condition ends with reason ``NewReplicaSetAvailable``; a template whose container env
  matches ``fail_when_env`` never becomes available and ends with ``ProgressDeadlineExceeded``;
- switches: ``conflicts`` (answer the next N patches with 409), ``forbidden`` (403 RBAC on everything);
- ``faults``: a list of ``Fault``s for what goes wrong *after* a patch has landed (``after_patches``):
  reads failing for a while (503), 409 conflicts, 403, and dropped connections — before the request is
  served (``drop``) or after it was applied (``apply_then_drop``: the patch lands, its answer is lost).
  ``patches_applied`` counts the patches that changed the pod template (env, annotations).

Errors are Kubernetes ``Status`` objects, as the client expects. Started once per test session by
``tests/plugins/kubernetes.py``.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

_PATH = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/?]+)$")
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
}


DROP = 0
"""The status ``handle`` answers when the connection must be closed without an answer."""

_REASONS = {
    403: "Forbidden",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """Answer matching requests wrongly, once ``after_patches`` patches have been applied."""

    method: str  # GET | PATCH | PUT | * (any)
    kind: Literal["status", "drop", "apply_then_drop"] = "status"
    # status: a Kubernetes Status error with ``status``; drop: close the connection before serving the
    # request; apply_then_drop: serve it (a PATCH lands) and close the connection instead of answering
    status: int = 503
    times: int = 1  # how many matching requests it spoils; then it is spent
    after_patches: int = 0  # armed once this many patches have been applied (1 = after the rollout's patch)

    def matches(self, method: str, patches_applied: int) -> bool:
        return self.times > 0 and self.method in (method, "*") and patches_applied >= self.after_patches


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            return copy.deepcopy(patch)  # not mergeable: replace, like the API server
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a strategic-merge patch to a JSON object (the subset Deployments need)."""
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(current)
    for name, value in patch.items():
        if name.startswith("$"):  # $setElementOrder/env, $retainKeys, ...: ordering hints only
            continue
        if value is None:
            result.pop(name, None)
        elif isinstance(value, dict) and isinstance(result.get(name), dict):
            result[name] = strategic_merge(result[name], value)
        elif isinstance(value, list) and name in _MERGE_KEYS and isinstance(result.get(name), list):
            result[name] = _merge_list(result[name], value, _MERGE_KEYS[name])
        elif isinstance(value, dict):
            result[name] = strategic_merge({}, value)
        elif isinstance(value, list) and name in _MERGE_KEYS:
            result[name] = [
                strategic_merge({}, v) for v in value if isinstance(v, dict) and v.get("$patch") != "delete"
            ]
        else:
            result[name] = copy.deepcopy(value)
    return result


def json_merge(current: Any, patch: Any) -> Any:
    """RFC 7386 merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(current) if isinstance(current, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = json_merge(result.get(name), value)
    return result


def container_env(deployment: dict[str, Any], container: str | None = None) -> dict[str, str | None]:
    """``{name: value}`` of a container's env (the first container unless named)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    chosen = next((c for c in containers if container is None or c["name"] == container), containers[0])
    return {item["name"]: item.get("value") for item in chosen.get("env", [])}


class KubernetesApiStandIn:
    """State and behaviour; the HTTP handler below only translates requests."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.deployments.clear()
            self.requests.clear()
            self.conflicts = 0  # answer this many next PATCH/PUT requests with 409
            self.forbidden = False  # 403 for every request (missing RBAC)
            self.fail_when_env: dict[str, str] = {}  # templates with this env never become available
            self.deadline_reads = 6  # reads of a failing rollout before ProgressDeadlineExceeded
            self.faults: list[Fault] = []
            self.patches_applied = 0
            self._resource_version = 100

    # --- fixtures helpers -----------------------------------------------------------------------
    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        env: dict[str, str] | None = None,
        replicas: int = 2,
        container: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            self._resource_version += 1
            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "generation": 1,
                    "resourceVersion": str(self._resource_version),
                    "uid": f"uid-{namespace}-{name}",
                    "labels": {"app": name},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "progressDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {
                                    "name": container or name,
                                    "image": f"acr.example.io/{name}:1.0",
                                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                                },
                                {"name": "otel-sidecar", "image": "otel/collector:0.100"},
                            ]
                        },
                    },
                },
                "status": {},
            }
            self._settle(deployment)
            self.deployments[(namespace, name)] = deployment
            return copy.deepcopy(deployment)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.deployments[(namespace, name)])

    # --- rollout simulation -----------------------------------------------------------------------
    def _healthy(self, deployment: dict[str, Any]) -> bool:
        if not self.fail_when_env:
            return True
        env = container_env(deployment)
        return not all(env.get(k) == v for k, v in self.fail_when_env.items())

    def _settle(self, deployment: dict[str, Any]) -> None:
        replicas = deployment["spec"]["replicas"]
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
        deployment["_reads"] = 0

    def _advance(self, deployment: dict[str, Any]) -> None:
        """One step of the rollout per read (deterministic, fast, no timers)."""
        status = deployment["status"]
        generation = deployment["metadata"]["generation"]
        replicas = deployment["spec"]["replicas"]
        if (
            status.get("observedGeneration") == generation
            and status.get("updatedReplicas") == replicas
            and (status.get("availableReplicas") == replicas or _deadline(status))
        ):
            return
        deployment["_reads"] = deployment.get("_reads", 0) + 1
        reads = deployment["_reads"]
        status["observedGeneration"] = generation
        healthy = self._healthy(deployment)
        updated = min(replicas, reads)
        status["updatedReplicas"] = updated
        status["replicas"] = replicas + (1 if updated < replicas else 0)  # surge pod while rolling
        if healthy:
            status["availableReplicas"] = (
                replicas if updated == replicas else replicas - 1 if replicas > 1 else 0
            )
            status["readyReplicas"] = status["availableReplicas"]
            done = updated == replicas
            status["conditions"] = [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                },
            ]
        else:
            status["availableReplicas"] = max(replicas - 1, 0)  # old pods keep serving, new ones crash
            status["unavailableReplicas"] = replicas - status["availableReplicas"]
            expired = reads >= self.deadline_reads
            status["conditions"] = [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {
                    "type": "Progressing",
                    "status": "False" if expired else "True",
                    "reason": "ProgressDeadlineExceeded" if expired else "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{deployment["metadata"]["name"]}-new" has timed out progressing.'
                    if expired
                    else "rolling",
                },
            ]

    def _write(self, deployment: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
        updated = {k: (_omit_empty(v) if k != "status" else v) for k, v in updated.items()}
        self._resource_version += 1
        updated["metadata"]["resourceVersion"] = str(self._resource_version)
        updated["metadata"]["generation"] = deployment["metadata"]["generation"]
        if updated.get("spec") != deployment.get("spec"):
            updated["metadata"]["generation"] += 1
            updated["_reads"] = 0
            status = updated.setdefault("status", {})
            status["updatedReplicas"] = 0
        updated["status"] = updated.get("status") or deployment.get("status", {})
        return updated

    # --- request handling ---------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, content_type: str, body: Any, authorization: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "content_type": content_type,
                    "body": body,
                    "authorization": authorization,
                }
            )
            match = _PATH.match(path.split("?", 1)[0])
            fault = next((f for f in self.faults if f.matches(method, self.patches_applied)), None)
            if fault is not None:
                fault.times -= 1
                if fault.kind == "drop":
                    return DROP, {}
                if fault.kind == "status":
                    return self._fault_status(fault.status, method, match)
                code, payload = self._serve(method, path, content_type, body, match)
                return (DROP, {}) if code < 400 else (code, payload)
            return self._serve(method, path, content_type, body, match)

    def _fault_status(
        self, code: int, method: str, match: re.Match[str] | None
    ) -> tuple[int, dict[str, Any]]:
        if code == 403:
            return self._forbidden(method, match)
        if code == 409:
            return _conflict(match["name"] if match else "")
        return _status(code, _REASONS.get(code, "InternalError"), f"injected {code} (test fault)")

    def _forbidden(self, method: str, match: re.Match[str] | None) -> tuple[int, dict[str, Any]]:
        resource = f'deployments.apps "{match["name"]}"' if match else "the resource"
        verb = {"GET": "get", "PATCH": "patch", "PUT": "update"}.get(method, method.lower())
        return _status(
            403,
            "Forbidden",
            f'{resource} is forbidden: User "system:serviceaccount:lightning:loop" cannot {verb} '
            f'resource "deployments" in API group "apps" in the namespace "{match["ns"] if match else ""}"',
        )

    def _serve(
        self, method: str, path: str, content_type: str, body: Any, match: re.Match[str] | None
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if self.forbidden:
                return self._forbidden(method, match)
            if match is None:
                return _status(404, "NotFound", f"the server could not find the requested resource ({path})")
            key = (match["ns"], match["name"])
            deployment = self.deployments.get(key)
            if deployment is None:
                return _status(404, "NotFound", f'deployments.apps "{match["name"]}" not found')
            if method == "GET":
                self._advance(deployment)
                return 200, _public(deployment)
            if method in ("PATCH", "PUT") and self.conflicts > 0:
                self.conflicts -= 1
                return _conflict(match["name"])
            if method == "PATCH":
                if not isinstance(body, dict):
                    return _status(
                        415, "UnsupportedMediaType", "only object patches are supported by this stand-in"
                    )
                if content_type.startswith("application/strategic-merge-patch+json"):
                    updated = strategic_merge(_public(deployment), body)
                elif content_type.startswith("application/merge-patch+json"):
                    updated = json_merge(_public(deployment), body)
                else:
                    return _status(415, "UnsupportedMediaType", f"unsupported patch type {content_type}")
                if _template(updated) != _template(deployment):
                    self.patches_applied += 1
                self.deployments[key] = self._write(deployment, updated)
                return 200, _public(self.deployments[key])
            if method == "PUT":
                sent = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
                if sent and sent != deployment["metadata"]["resourceVersion"]:
                    return _status(
                        409,
                        "Conflict",
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )
                self.deployments[key] = self._write(deployment, copy.deepcopy(body))
                return 200, _public(self.deployments[key])
            return _status(405, "MethodNotAllowed", f"{method} is not supported")


def _conflict(name: str) -> tuple[int, dict[str, Any]]:
    return _status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on deployments.apps "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _template(deployment: dict[str, Any]) -> Any:
    return _omit_empty(deployment.get("spec", {}).get("template"))


def _omit_empty(value: Any) -> Any:
    """Go's ``omitempty``: the API server never returns empty maps or lists (``annotations: {}``)."""
    if isinstance(value, dict):
        return {k: _omit_empty(v) for k, v in value.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_omit_empty(v) for v in value]
    return value


def _deadline(status: dict[str, Any]) -> bool:
    return any(c.get("reason") == "ProgressDeadlineExceeded" for c in status.get("conditions", []))


def _public(deployment: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in deployment.items() if not k.startswith("_")}


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            code, payload = _status(400, "BadRequest", "request body is not JSON")
        else:
            code, payload = self.server.state.handle(
                self.command,
                self.path,
                self.headers.get("Content-Type", ""),
                body,
                self.headers.get("Authorization"),
            )
        if code == DROP:
            self.close_connection = True  # the client sees the connection end without an answer
            return
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # quiet: pytest shows failures, not access logs


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: KubernetesApiStandIn


def start(
    host: str = "127.0.0.1", port: int = 0, *, tls: tuple[Path, Path] | None = None
) -> tuple[_Server, KubernetesApiStandIn, str]:
    """Start the stand-in in a background thread; returns (server, state, base URL).

    ``tls=(cert_file, key_file)`` serves HTTPS, as an AKS API server does with its own cluster CA."""
    state = KubernetesApiStandIn()
    server = _Server((host, port), _Handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.state = state
    threading.Thread(target=server.serve_forever, name="kubernetes-api-standin", daemon=True).start()
    return server, state, f"{scheme}://{host}:{server.server_address[1]}"

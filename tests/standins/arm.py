"""A local HTTPS stand-in for Azure Resource Manager's Cognitive Services deployments API.

``PUT``/``GET``/``DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/
accounts/{account}/deployments/{name}?api-version=…`` with ARM's asynchronous-operation pattern: the PUT
answers 201 with ``provisioningState: Creating`` and an ``Azure-AsyncOperation`` URL that reports
``InProgress`` for ``operation_polls`` reads, then ``Succeeded`` (or ``Failed`` with an error when
``fail_with`` is set). ``forbidden`` answers 403 ``AuthorizationFailed`` as ARM does without RBAC.

HTTPS because azure-core refuses to send bearer tokens over plain HTTP: a self-signed certificate for
127.0.0.1 is generated per session (``cryptography``); clients trust it with ``connection_verify=<ca file>``.
Every request is recorded (method, path, query, Authorization header, JSON body) for exact assertions.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_DEPLOYMENT = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.CognitiveServices/"
    r"accounts/(?P<account>[^/]+)/deployments/(?P<name>[^/]+)$"
)
_OPERATION = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.CognitiveServices/locations/eastus/operationStatuses/(?P<op>[^/]+)$"
)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the file is also the CA bundle clients trust)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "arm-standin.pem", directory / "arm-standin.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class ArmStandIn:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.url = ""
        self.ca_file = Path()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: list[dict[str, Any]] = []
            self.deployments: dict[str, dict[str, Any]] = {}
            self.operations: dict[str, dict[str, Any]] = {}
            self.operation_polls = 2
            self.fail_with: tuple[str, str] | None = None  # (code, message) of a failed operation
            self.forbidden = False

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": parts.path,
                    "query": query,
                    "authorization": headers.get("authorization"),
                    "body": body,
                }
            )
            if "api-version" not in query:
                return (
                    400,
                    {},
                    _error("MissingApiVersionParameter", "The api-version query parameter is required."),
                )
            if self.forbidden:
                return (
                    403,
                    {},
                    _error(
                        "AuthorizationFailed",
                        "The client 'loop' does not have authorization to perform action "
                        "'Microsoft.CognitiveServices/accounts/deployments/write' over scope "
                        f"'{parts.path}' or the scope is invalid.",
                    ),
                )
            operation = _OPERATION.match(parts.path)
            if operation and method == "GET":
                op = self.operations.get(operation["op"])
                if op is None:
                    return 404, {}, _error("NotFound", "operation not found")
                op["polls"] += 1
                if op["polls"] <= self.operation_polls:
                    return (
                        200,
                        {"Retry-After": "0"},
                        {"id": op["id"], "name": operation["op"], "status": "InProgress"},
                    )
                deployment = self.deployments[op["resource"]]
                if self.fail_with is not None:
                    deployment["properties"]["provisioningState"] = "Failed"
                    code, message = self.fail_with
                    return (
                        200,
                        {},
                        {
                            "id": op["id"],
                            "name": operation["op"],
                            "status": "Failed",
                            "error": {"code": code, "message": message},
                        },
                    )
                deployment["properties"]["provisioningState"] = "Succeeded"
                return 200, {}, {"id": op["id"], "name": operation["op"], "status": "Succeeded"}
            match = _DEPLOYMENT.match(parts.path)
            if match is None:
                return 404, {}, _error("InvalidResourceType", f"no route for {parts.path}")
            if method == "PUT":
                op_id = str(uuid.uuid4())
                deployment = {
                    "id": parts.path,
                    "name": match["name"],
                    "type": "Microsoft.CognitiveServices/accounts/deployments",
                    "sku": body.get("sku"),
                    "properties": {**body.get("properties", {}), "provisioningState": "Creating"},
                }
                self.deployments[parts.path] = deployment
                self.operations[op_id] = {"id": op_id, "polls": 0, "resource": parts.path}
                op_url = (
                    f"{self.url}/subscriptions/{match['sub']}/providers/Microsoft.CognitiveServices/locations/eastus/"
                    f"operationStatuses/{op_id}?api-version={query['api-version']}"
                )
                return 201, {"Azure-AsyncOperation": op_url, "Retry-After": "0"}, deployment
            if method == "GET":
                if parts.path not in self.deployments:
                    return 404, {}, _error("DeploymentNotFound", f"deployment {match['name']} not found")
                return 200, {}, self.deployments[parts.path]
            if method == "DELETE":
                self.deployments.pop(parts.path, None)
                return 200, {}, None
            return 405, {}, _error("MethodNotAllowed", method)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        code, extra, payload = self.server.state.handle(self.command, self.path, headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ArmStandIn


def start(directory: Path) -> tuple[_Server, ArmStandIn]:
    """Start the HTTPS stand-in on a free port; ``state.url`` and ``state.ca_file`` say how to reach it."""
    cert_file, key_file = make_certificate(directory)
    state = ArmStandIn()
    server = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.state = state
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    state.ca_file = cert_file
    threading.Thread(target=server.serve_forever, name="arm-standin", daemon=True).start()
    return server, state

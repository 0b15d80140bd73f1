"""A local HTTPS stand-in for Azure OpenAI's fine-tuning data plane, for the ``AzureOpenAI`` client.

The fine-tuning behaviour (files, jobs walking through a plan, events, checkpoints, cancel, faults) is
the training tests' ``FineTuneServer`` (``tests/integration/training/ft_server.py``); this adds what makes
it Azure's endpoint rather than OpenAI's:

- HTTPS with a self-signed certificate for 127.0.0.1 (``tests.standins.arm.make_certificate``): clients
  trust ``ca_file`` (``SSL_CERT_FILE`` for the ``openai`` SDK's httpx client);
- only the deployment-less Azure routes (``/openai/files…``, ``/openai/fine_tuning/jobs…``): anything else
  is 404 ``NotFound``;
- every request must carry ``api-version`` (else 400 ``MissingApiVersionParameter``) and an Entra ID
  bearer token equal to ``token`` (else 401), never an ``api-key``.
"""

from __future__ import annotations

import ssl
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.integration.training.ft_server import FineTuneServer


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class AzureOpenAIStandIn(FineTuneServer):
    def __init__(self, directory: Path, *, token: str = "entra-token-123") -> None:
        from tests.standins.arm import make_certificate

        super().__init__()
        self.token = token
        self.ca_file, key_file = make_certificate(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)

    @property
    def root(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"https://{host}:{port}"

    def refusal(self, raw_path: str, headers: Any) -> tuple[int, dict[str, Any]] | None:
        """What Azure answers a request that is not for it; None when it is."""
        parts = urlsplit(raw_path)
        if not parts.path.startswith("/openai/"):
            return 404, _error("NotFound", f"Resource not found: {parts.path}")
        if "api-version" not in parse_qs(parts.query):
            return 400, _error("MissingApiVersionParameter", "The api-version query parameter is required.")
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _error(
                "PermissionDenied", "Access denied due to invalid subscription key or wrong API endpoint."
            )
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base: Any = super()._handler()
        server = self

        class AzureHandler(base):  # type: ignore[misc, valid-type]
            def _handle(self, method: str) -> None:
                refused = server.refusal(self.path, self.headers)
                if refused is None:
                    super()._handle(method)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)  # keep the connection usable for the next request
                self._answer(*refused)

        return AzureHandler

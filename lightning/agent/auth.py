"""The agent's API keys: which keys ``POST /message`` accepts, and the ASGI guard that checks them.

``parse_api_keys`` turns ``AGENT_API_KEY`` and ``AGENT_API_KEYS`` (comma-separated, for rotation) into
the keys; ``lightning.bootstrap_agent.agent_api_keys`` reads them from the settings. ``ApiKeyGuard`` wraps the agent's ASGI app (``lightning.agent.server.create_app``): a request
to the guarded path needs one of the keys in the ``api-key`` header — what an Azure API Management
policy injects — or as ``Authorization: Bearer <key>``. Anything else gets HTTP 401 with a JSON-RPC
error object; other paths (``/healthz``, ``/readyz``) stay open for probes. ``simulate-traffic`` sends
the first key; ``listen_address`` is where ``serve-agent`` listens without one. Standard library only, so the traffic client does not load the server's dependencies.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send


logger = logging.getLogger(__name__)

UNAUTHORIZED = -32001  # JSON-RPC's implementation-defined server-error range: no valid API key


def parse_api_keys(*values: str | None) -> tuple[str, ...]:
    """Every comma-separated key of ``values`` in order, blanks and repeats dropped."""
    keys: list[str] = []
    for value in values:
        if value is not None:
            keys.extend(part.strip() for part in value.split(","))
    return tuple(dict.fromkeys(key for key in keys if key))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listen_address(host: str | None, *, keyed: bool) -> tuple[str, str]:
    """Where ``serve-agent`` listens (loopback unless ``--host`` says otherwise), and the line it prints
    about who may call ``POST /message`` there."""
    bind = host or "127.0.0.1"
    if keyed:
        return bind, "POST /message needs the API key (api-key header or Authorization: Bearer)"
    if host is None:
        return bind, (
            "no AGENT_API_KEY set, so POST /message is open and the agent listens on loopback only "
            "(--host 0.0.0.0 listens on every interface)"
        )
    if bind in LOOPBACK:
        return bind, "no AGENT_API_KEY set: POST /message is open to this machine"
    return (
        bind,
        f"warning: no AGENT_API_KEY set, so POST /message on {bind} is open to anyone who can reach it",
    )


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The key in ``api-key``, else the token of ``Authorization: Bearer``; None when neither is there."""
    found: dict[bytes, bytes] = dict(headers)
    api_key = found.get(b"api-key", b"").strip()
    if api_key:
        return api_key
    scheme, _, token = found.get(b"authorization", b"").strip().partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        return token.strip()
    return None


class ApiKeyGuard:
    """ASGI middleware: requests to ``path`` need one of ``keys``; every other path passes through.

    The presented key is compared with every accepted key with ``hmac.compare_digest``, so the time
    taken says nothing about how much of a key matched, or which one. Several keys allow rotation: add
    the new key, move the callers (API Management's named value), then remove the old key.
    """

    def __init__(self, app: ASGIApp, *, keys: Sequence[str], path: str) -> None:
        if not keys:
            raise ValueError("ApiKeyGuard needs at least one key")
        self.app = app
        self.path = path.rstrip("/")
        self.keys = tuple(key.encode("utf-8") for key in keys)

    def accepts(self, presented: bytes) -> bool:
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(presented, key)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope.get("headers", []))
        if presented is not None and self.accepts(presented):
            await self.app(scope, receive, send)
            return
        reason = "no API key" if presented is None else "the API key is not accepted"
        client = (scope.get("client") or ("unknown", 0))[0]
        logger.warning("refused %s %s from %s: %s", scope.get("method"), scope["path"], client, reason)
        message = f"{reason}: send the agent's key in the api-key header or as Authorization: Bearer <key>"
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": UNAUTHORIZED, "message": message}})
        payload = body.encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", b'Bearer realm="agent"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

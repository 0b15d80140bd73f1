"""The review console's ASGI app (Starlette): the page's static files and the shared HTTP API.

``create_app`` serves

* ``GET /`` and ``GET /{file}``: the page (``lightning/console/static``), with ``SECURITY_HEADERS``;
* ``/api/...``: every route of ``lightning.api.ROUTES`` — the Function App's API, route for route —
  run on this process's ``Container`` in a worker thread.

Who may call the API: with tokens (``LIGHTNING_CONSOLE_TOKEN``, see ``auth.py``) every ``/api`` call
needs ``Authorization: Bearer <token>`` (401 JSON otherwise), and the token's name, else ``reviewer``,
is the caller recorded as ``labeled_by``. Headers a client sets (``x-ms-client-principal-name``) are
never trusted for that. Requests from another site (``Origin`` / ``Sec-Fetch-Site``) are refused, and
when the console listens on loopback only loopback ``Host`` names are accepted (no DNS rebinding).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lightning import api
from lightning.console.assets import SECURITY_HEADERS, read_asset
from lightning.console.auth import ConsoleToken, authenticate

if TYPE_CHECKING:
    from lightning.bootstrap import Container

MAX_BODY_BYTES = 16 * 1024 * 1024
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _json(response: api.ApiResponse) -> Response:
    headers = {**response.headers, "Cache-Control": "no-store"}
    return Response(response.content(), response.status, headers=headers, media_type="application/json")


def _error(status: int, kind: str, message: str, **headers: str) -> Response:
    answer = api.error_response(status, kind, message)
    return _json(answer.model_copy(update={"headers": {**answer.headers, **headers}}))


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cross_site(request: Request) -> bool:
    """A browser request started by another site's page (what a forged form post or fetch looks like)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    host = request.headers.get("host", "")
    return origin.rstrip("/").split("://", 1)[-1].lower() != host.lower()


class _Guard:
    """Pure ASGI middleware: security headers on every answer; loopback ``Host`` names only when asked."""

    def __init__(self, app: ASGIApp, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback_only:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if _host_name(host) not in LOOPBACK_NAMES:
                refusal = _error(421, "MisdirectedRequest", "this console answers loopback host names only")
                await refusal(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    container: Container,
    *,
    tokens: list[ConsoleToken],
    reviewer: str,
    loopback_only: bool = False,
) -> ASGIApp:
    """The console on ``container``'s ports (see the module docstring)."""

    def caller_of(request: Request) -> tuple[str | None, Response | None]:
        if _cross_site(request):
            return None, _error(403, "Forbidden", "cross-site requests are refused; open the console itself")
        if not tokens:
            return reviewer, None
        token = authenticate(request.headers.get("authorization"), tokens)
        if token is None:
            return None, _error(
                401,
                "Unauthorized",
                "this console needs its token: open the link with #token=<LIGHTNING_CONSOLE_TOKEN> once, "
                "or send Authorization: Bearer <token>",
                **{"WWW-Authenticate": 'Bearer realm="lightning-console"'},
            )
        return token.name or reviewer, None

    def endpoint(target: api.Route) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            caller, refusal = caller_of(request)
            if refusal is not None:
                return refusal
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return _error(413, "InvalidInput", f"request body over {MAX_BODY_BYTES // 2**20} MB")
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return _error(413, "InvalidInput", f"request body over {MAX_BODY_BYTES // 2**20} MB")
            api_request = api.ApiRequest(
                method=request.method,
                path_params={k: str(v) for k, v in request.path_params.items()},
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                caller=caller,
            )
            return _json(await run_in_threadpool(api.handle, target, api_request, container))

        run.__name__ = target.name
        return run

    async def no_such_route(request: Request) -> Response:
        _, refusal = caller_of(request)
        if refusal is not None:
            return refusal
        path = request.url.path
        return _error(404, "NotFound", f"no API route {request.method} {path}; see docs/console.md")

    async def asset(request: Request) -> Response:
        found = read_asset(request.path_params.get("name", ""))
        if found is None:
            return Response("not found\n", 404, media_type="text/plain")
        content, content_type = found
        return Response(content, 200, headers={"Cache-Control": "no-cache"}, media_type=content_type)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes = [Route(f"/api/{r.path}", endpoint(r), methods=[r.method]) for r in api.ROUTES]
    routes += [
        Route("/api/{rest:path}", no_such_route, methods=methods),
        Route("/api", no_such_route, methods=methods),
        Route("/", asset, methods=["GET"]),
        Route("/{name}", asset, methods=["GET"]),
    ]
    return _Guard(Starlette(routes=routes), loopback_only=loopback_only)


# --- running it ------------------------------------------------------------------------------------
def _server(app: ASGIApp, log_level: str) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` in the foreground until Ctrl+C / SIGTERM; ``on_listening(url)`` once bound."""
    from lightning.adapters.net import bind_listening_socket

    sock = bind_listening_socket(host, port, what="console")
    shown = f"[{host}]" if ":" in host else host
    if on_listening is not None:
        on_listening(f"http://{shown}:{sock.getsockname()[1]}/")
    try:
        _server(app, log_level).run(sockets=[sock])
    finally:
        sock.close()


@dataclass
class RunningConsole:
    """A console served from a thread of this process (tests, benchmarks)."""

    url: str
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, ready_timeout: float = 10.0
) -> RunningConsole:
    """Serve ``app`` from a background thread; returns once it accepts connections."""
    from lightning.adapters.net import bind_listening_socket, start_in_thread

    sock = bind_listening_socket(host, port, what="console")
    server = _server(app, "warning")
    thread = start_in_thread(server, sock, name="console", ready_timeout=ready_timeout)
    return RunningConsole(url=f"http://{host}:{sock.getsockname()[1]}", _server=server, _thread=thread)

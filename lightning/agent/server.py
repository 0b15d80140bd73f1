"""The agent's HTTP face: an MCP server (official ``mcp`` SDK) at ``POST /message`` plus health routes.

``create_app(agent)`` returns a Starlette app:

- ``POST /message`` — MCP streamable HTTP, stateless, JSON responses, so the workshop's PowerShell
  request works as-is: no ``initialize`` first, no (or an empty, or ``*/*``) ``Accept`` header, any
  ``Content-Type`` (``Invoke-RestMethod`` without ``-ContentType`` labels the body as a form). Tools:
  ``analyze_query {query, context?}`` and the five analytics tools directly. A failed call is a tool
  result with ``isError: true``; malformed JSON-RPC gets a JSON-RPC error object (HTTP 400), never a 500.
  With API keys (``AGENT_API_KEY`` / ``AGENT_API_KEYS``) it needs one in the ``api-key`` header (what
  Azure API Management injects) or as ``Authorization: Bearer <key>``; otherwise HTTP 401 with a
  JSON-RPC error.
- ``GET /healthz`` — liveness: the process serves (and says which model it would use). Never needs a key.
- ``GET /readyz`` — readiness: the capture writer (when on) is alive.
- anything else — a JSON 404/405.

Served with uvicorn by ``lightning.agent.runtime.serve``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from pydantic import Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from lightning.agent.auth import ApiKeyGuard
from lightning.agent.core import AnalyticsAgent
from lightning.domain.errors import LightningError

MESSAGE_PATH = "/message"


def _tool_result(payload: dict[str, Any], *, is_error: bool) -> CallToolResult:
    text = json.dumps(payload, ensure_ascii=False, default=str)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=payload, is_error=is_error
    )


def build_mcp_server(agent: AnalyticsAgent, *, expose_tools: bool = True) -> MCPServer[Any]:
    """The MCP server with ``analyze_query`` and (optionally) the five analytics tools."""
    definition = agent.definition
    server: MCPServer[Any] = MCPServer(
        name=definition.id, instructions=definition.description, version="1", log_level="WARNING"
    )

    @server.tool(
        name="analyze_query",
        description=(
            "Answer a business question: the agent's model chooses one analytics tool "
            "(churn, sales report, top products, customer segments, sales forecast), runs it on the "
            "company's data and returns the result with the model_version that chose it."
        ),
        structured_output=False,
    )
    async def analyze_query(
        query: Annotated[
            str, Field(min_length=1, max_length=8000, description="The question, in plain words.")
        ],
        context: Annotated[
            dict[str, Any] | None,
            Field(description="Caller context recorded with the episode (user, session)."),
        ] = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        caller = dict(context or {})
        if ctx is not None and ctx.request_id is not None:
            caller.setdefault("request_id", str(ctx.request_id))
        # The model call blocks; a worker thread keeps the event loop free (contextvars, so spans, follow).
        answer = await anyio.to_thread.run_sync(lambda: agent.analyze(query, context=caller))
        return _tool_result(answer.model_dump(mode="json"), is_error=answer.error is not None)

    if not expose_tools:
        return server

    def direct(name: str, arguments: dict[str, Any]) -> CallToolResult:
        try:
            result = agent.run_tool(name, arguments)
        except LightningError as exc:
            raise ToolError(str(exc)) from None
        return _tool_result(result, is_error=False)

    def describe(name: str) -> str:
        spec = definition.tool(name)
        return spec.description if spec else name

    @server.tool(name="analyze_churn", description=describe("analyze_churn"), structured_output=False)
    def analyze_churn(
        period: Annotated[
            str, Field(description="Period to analyze, e.g. 'Q4 2025', '2025', 'last quarter'.")
        ],
    ) -> CallToolResult:
        return direct("analyze_churn", {"period": period})

    @server.tool(name="sales_report", description=describe("sales_report"), structured_output=False)
    def sales_report(
        region: Annotated[
            Literal["north", "south", "east", "west", "all"], Field(description="Sales region.")
        ],
        period: Annotated[str, Field(description="Period of the report, e.g. 'Q3 2025', 'last month'.")],
    ) -> CallToolResult:
        return direct("sales_report", {"region": region, "period": period})

    @server.tool(name="top_products", description=describe("top_products"), structured_output=False)
    def top_products(
        n: Annotated[int, Field(ge=1, le=100, description="How many products to return.")],
        metric: Annotated[Literal["revenue", "units", "margin"], Field(description="Ranking metric.")],
    ) -> CallToolResult:
        return direct("top_products", {"n": n, "metric": metric})

    @server.tool(name="customer_segments", description=describe("customer_segments"), structured_output=False)
    def customer_segments(
        risk_level: Annotated[
            Literal["low", "medium", "high", "all"],
            Field(description="Risk level of the segments to return."),
        ],
    ) -> CallToolResult:
        return direct("customer_segments", {"risk_level": risk_level})

    @server.tool(name="sales_forecast", description=describe("sales_forecast"), structured_output=False)
    def sales_forecast(
        horizon_months: Annotated[int, Field(ge=1, le=24, description="How many months ahead to forecast.")],
    ) -> CallToolResult:
        return direct("sales_forecast", {"horizon_months": horizon_months})

    return server


def _jsonrpc_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}, status)


def _accepts_anything(value: bytes | None) -> bool:
    """No ``Accept`` header, an empty one, or only ``*/*``: the client takes whatever it is given."""
    if value is None:
        return True
    types = [part.split(b";")[0].strip() for part in value.split(b",")]
    return all(t in (b"", b"*/*") for t in types)


def _as_json_request(scope: Scope) -> Scope:
    """The body is JSON-RPC whatever the labels say, and the answer is JSON.

    ``curl -d`` and ``Invoke-RestMethod`` without ``-ContentType`` label the body as a form, and
    ``Invoke-RestMethod`` sends no ``Accept`` header at all: the SDK would refuse both (415 / 406).
    """
    original = scope.get("headers", [])
    accept = next((v for k, v in original if k == b"accept"), None)
    drop = {b"content-type", b"accept"} if _accepts_anything(accept) else {b"content-type"}
    headers = [(k, v) for k, v in original if k not in drop]
    if scope.get("method") == "POST":
        headers.append((b"content-type", b"application/json"))
    if b"accept" in drop:
        headers.append((b"accept", b"application/json"))
    return {**scope, "headers": headers}


def _json_errors(send: Send) -> Send:
    """Turn the SDK's plain-text HTTP errors (413 body too large, …) into JSON-RPC error objects."""
    state: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            is_json = headers.get(b"content-type", b"").startswith(b"application/json")
            if message["status"] >= 400 and not is_json:
                state["status"] = message["status"]
                state["body"] = b""
                return
        elif message["type"] == "http.response.body" and "status" in state:
            state["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            text = state["body"].decode("utf-8", "replace").strip() or "request refused"
            code = -32700 if state["status"] == 400 else -32600
            payload = json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": text}}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": state["status"],
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await send(message)

    return wrapped


def create_app(
    agent: AnalyticsAgent,
    *,
    host: str = "0.0.0.0",
    expose_tools: bool = True,
    close_agent_on_shutdown: bool = True,
    api_keys: Sequence[str] = (),
) -> Starlette:
    """The ASGI app. ``host`` is the bind address: on loopback the SDK's DNS-rebinding guard is on.

    With ``api_keys``, ``/message`` answers only requests that carry one of them (``ApiKeyGuard``).
    """
    keys = [key for key in api_keys if key]
    server = build_mcp_server(agent, expose_tools=expose_tools)
    security = None
    if host not in ("127.0.0.1", "localhost", "::1"):
        # Behind a Kubernetes Service the Host header is the service name; the guard is for browsers
        # reaching a developer's loopback server, which is the case above.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp_app = server.streamable_http_app(
        streamable_http_path=MESSAGE_PATH,
        json_response=True,
        stateless_http=True,
        transport_security=security,
        host=host,
    )

    async def healthz(request: Request) -> JSONResponse:
        model, source = agent.models.resolve()
        return JSONResponse(
            {
                "status": "ok",
                "agent_id": agent.agent_id,
                "model_version": model,
                "model_source": source,
                "capture": agent.capture.enabled,
            }
        )

    async def readyz(request: Request) -> JSONResponse:
        writer = agent.capture.writer
        capture_ok = writer is None or writer.alive
        body = {"status": "ready" if capture_ok else "not ready", "capture_writer": capture_ok}
        return JSONResponse(body, status_code=200 if capture_ok else 503)

    async def message_get(request: Request) -> Response:
        # Stateless JSON mode has no server-to-client stream to open.
        return _jsonrpc_error(405, -32600, "use POST /message with a JSON-RPC 2.0 body")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return JSONResponse({"error": {"status": status, "message": f"no route {request.url.path}"}}, status)

    async def mcp_only(scope: Scope, receive: Receive, send: Send) -> None:
        # The SDK app answers unknown paths with plain text; every other route here speaks JSON.
        if scope["type"] == "http" and scope["path"].rstrip("/") != MESSAGE_PATH:
            response = JSONResponse(
                {"error": {"status": 404, "message": f"no route {scope['path']}; POST {MESSAGE_PATH}"}}, 404
            )
            await response(scope, receive, send)
            return
        if scope["type"] == "http":
            scope = _as_json_request(scope)
            send = _json_errors(send)
        await mcp_app(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_app.router.lifespan_context(mcp_app):
            try:
                yield
            finally:
                if close_agent_on_shutdown:
                    await anyio.to_thread.run_sync(agent.close)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(MESSAGE_PATH, message_get, methods=["GET", "DELETE"]),
            Mount("/", app=mcp_only),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
        middleware=[Middleware(ApiKeyGuard, keys=keys, path=MESSAGE_PATH)] if keys else [],
    )

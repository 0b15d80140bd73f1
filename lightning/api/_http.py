"""The request and response values of the host-neutral HTTP API, and the domain-error → status mapping.

Hosts (the Function App's blueprint, the console's Starlette app) turn their own request object into an
``ApiRequest``, call ``lightning.api.handle`` and write the ``ApiResponse`` back. Errors map once, here:
a ``LightningError`` becomes its ``http_status`` (``InvalidInput`` 400, ``NotFound`` 404, ``Conflict``
409, ``ProviderError`` 502/503) with a JSON body ``{"error": {"type", "message", ...ids}}``; a request
body or query string that does not validate is a 400 naming the fields; anything unexpected is logged
and answered 500 without internals.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightning.domain.errors import InvalidInput, LightningError, TransientProviderError

M = TypeVar("M", bound=BaseModel)


class ApiRequest(BaseModel):
    """One HTTP request as every host hands it to the API."""

    model_config = ConfigDict(frozen=True)

    method: str = Field(description="GET, POST …, upper case.")
    path_params: dict[str, str] = Field(default_factory=dict, description="The route's {parameters}.")
    query: dict[str, str] = Field(default_factory=dict, description="The query string (last value wins).")
    headers: dict[str, str] = Field(default_factory=dict, description="Header names in lower case.")
    body: bytes = b""
    caller: str | None = Field(
        default=None,
        description="Who calls, as the host authenticated them (App Service authentication's principal, "
        "the console's reviewer); None: the host knows no name.",
    )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ApiResponse(BaseModel):
    """A JSON response: status, body, extra headers (``ETag``, ``Retry-After`` …)."""

    model_config = ConfigDict(frozen=True)

    status: int = 200
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)

    def content(self) -> bytes:
        return json.dumps(self.body, default=str, ensure_ascii=False).encode("utf-8")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> ApiResponse:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return ApiResponse(status=status, body=body, headers=headers or {})


def error_response(status: int, kind: str, message: str, **context: Any) -> ApiResponse:
    """``{"error": {"type", "message", ...context}}``; ``retry_after`` also becomes a ``Retry-After`` header."""
    error = {"type": kind, "message": message, **{k: v for k, v in context.items() if v is not None}}
    headers = {}
    if context.get("retry_after") is not None:
        headers["Retry-After"] = str(max(1, round(float(context["retry_after"]))))
    return ApiResponse(status=status, body={"error": error}, headers=headers)


def error_of(exc: LightningError) -> ApiResponse:
    """The response a domain error maps to (see the module docstring)."""
    return error_response(
        exc.http_status,
        type(exc).__name__,
        exc.message,
        id=getattr(exc, "ident", None),
        field=getattr(exc, "field", None),
        retry_after=exc.retry_after if isinstance(exc, TransientProviderError) else None,
    )


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_json_body(raw: bytes, model: type[M]) -> M:
    """The JSON body validated by ``model``; ``InvalidInput`` for malformed or invalid JSON (an empty
    body is ``{}``)."""
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    return parse_model(model, data)


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None

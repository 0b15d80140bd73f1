"""HTTP plumbing for the Functions endpoints: JSON responses and the domain-error → status mapping.

Every endpoint body runs inside ``json_endpoint``: a ``LightningError`` becomes its ``http_status``
(``InvalidInput`` 400, ``NotFound`` 404, ``Conflict`` 409, ``ProviderError`` 502/503) with a JSON body
``{"error": {"type", "message", ...ids}}``; a request body or query string that does not validate is a
400 naming the fields; anything unexpected is logged and answered 500 without internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from lightning.domain.errors import InvalidInput, LightningError, TransientProviderError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str, ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )


def error_response(status: int, kind: str, message: str, **context: Any) -> func.HttpResponse:
    error = {"type": kind, "message": message, **{k: v for k, v in context.items() if v is not None}}
    headers = None
    if "retry_after" in context and context["retry_after"] is not None:
        headers = {"Retry-After": str(max(1, round(float(context["retry_after"]))))}
    return json_response({"error": error}, status, headers)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_body(req: func.HttpRequest, model: type[M]) -> M:
    """The JSON body validated by ``model``; ``InvalidInput`` for missing, malformed or invalid JSON."""
    raw = req.get_body() or b""
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
        raise InvalidInput(_validation_message(exc)) from None


def json_endpoint(
    handler: Callable[[func.HttpRequest], Any],
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Wrap an endpoint: its return value becomes a 200 JSON body; errors become statuses (see module)."""

    def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        try:
            result = handler(req)
        except LightningError as exc:
            return error_response(
                exc.http_status,
                type(exc).__name__,
                exc.message,
                id=getattr(exc, "ident", None),
                field=getattr(exc, "field", None),
                retry_after=exc.retry_after if isinstance(exc, TransientProviderError) else None,
            )
        except ValidationError as exc:  # a model built inside the handler from user input
            return error_response(400, "InvalidInput", _validation_message(exc))
        except Exception:
            logger.exception("unhandled error in %s %s", req.method, req.url)
            return error_response(500, "InternalError", "internal error; see the Function App logs")
        if isinstance(result, func.HttpResponse):
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return json_response(result)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint

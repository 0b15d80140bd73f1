"""The HTTP API of Lightning Loop, independent of the host that serves it.

Routes are plain functions taking an ``ApiRequest`` (method, path parameters, query, headers, body,
caller) and the host's ``Container``; ``handle`` runs one and maps errors to statuses, so every host
answers alike. Two hosts serve the same table: the Function App (thin Blueprint adapters in
``lightning/functions/http.py``) and the review console (``lightning/console/app.py``). Nothing is
built at import: the Functions host imports this package just to index the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lightning.api._http import (
    ApiRequest,
    ApiResponse,
    error_of,
    error_response,
    json_response,
    parse_json_body,
    parse_model,
    validation_message,
)
from lightning.api.routes import ROUTES, Route
from lightning.domain.errors import LightningError

if TYPE_CHECKING:
    from lightning.bootstrap import Container

logger = logging.getLogger(__name__)

__all__ = [
    "ROUTES",
    "ApiRequest",
    "ApiResponse",
    "Route",
    "error_of",
    "error_response",
    "handle",
    "json_response",
    "parse_json_body",
    "parse_model",
    "respond",
    "route",
    "validation_message",
]

_BY_NAME = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    """The route called ``name`` (a Function's name); ``KeyError`` when there is none."""
    return _BY_NAME[name]


def respond(call: Callable[[], Any], *, what: str) -> ApiResponse:
    """Run ``call``: its result becomes a 200 JSON body (an ``ApiResponse`` is kept as it is), errors
    become statuses — 400 bad input, 404 unknown ids, 409 conflicts, 502/503 provider failures, 500
    anything else (logged; the answer holds no internals). ``what`` names the request in the log."""
    try:
        result = call()
    except LightningError as exc:
        return error_of(exc)
    except ValidationError as exc:  # a model built inside the handler from user input
        return error_response(400, "InvalidInput", validation_message(exc))
    except Exception:
        logger.exception("unhandled error in %s", what)
        return error_response(500, "InternalError", "internal error; see the server's log")
    if isinstance(result, ApiResponse):
        return result
    return json_response(result)


def handle(target: Route, request: ApiRequest, container: Container) -> ApiResponse:
    """Answer ``request`` with route ``target`` on ``container``'s ports (errors mapped by ``respond``)."""
    return respond(lambda: target.handler(request, container), what=f"{request.method} /api/{target.path}")

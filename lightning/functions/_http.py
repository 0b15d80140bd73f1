"""HTTP plumbing for the Functions endpoints: ``func.HttpRequest`` ↔ the shared API's values.

``serve(req, name)`` answers with the shared API's route ``name`` (``lightning/api``) on the Function
App's Container: the request becomes an ``ApiRequest`` — the caller is App Service authentication's
principal (``x-ms-client-principal-name``), the ``code`` query parameter is the host's function key, not
ours — and the ``ApiResponse`` a ``func.HttpResponse``. Errors map in ``lightning.api.respond``:
``InvalidInput`` 400, ``NotFound`` 404, ``Conflict`` 409, ``ProviderError`` 502/503, a body or query
string that does not validate 400 naming the fields, anything unexpected 500 without internals.

``json_endpoint`` wraps a Functions-only handler (``promote_model``) with the same mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel

from lightning import api
from lightning.api import ApiRequest, ApiResponse

M = TypeVar("M", bound=BaseModel)

PRINCIPAL_HEADER = "x-ms-client-principal-name"
"""Set by App Service authentication (Entra ID sign-in), which strips it from incoming requests."""


def to_api_request(req: func.HttpRequest) -> ApiRequest:
    return ApiRequest(
        method=req.method.upper(),
        path_params=dict(req.route_params),
        # ``code`` is the function key when passed in the query string: the host's, not ours.
        query={k: v for k, v in req.params.items() if k != "code"},
        headers={k.lower(): v for k, v in req.headers.items()},
        body=req.get_body() or b"",
        caller=req.headers.get(PRINCIPAL_HEADER) or None,
    )


def to_http_response(response: ApiResponse) -> func.HttpResponse:
    return func.HttpResponse(
        response.content(),
        status_code=response.status,
        mimetype="application/json",
        headers=response.headers or None,
    )


def serve(req: func.HttpRequest, name: str) -> func.HttpResponse:
    """Answer ``req`` with the shared API's route ``name`` on the Function App's Container."""
    from lightning.functions._runtime import container

    target = api.route(name)
    request = to_api_request(req)
    # The Container is built inside ``respond``: bad settings are answered like any other error.
    return to_http_response(
        api.respond(lambda: target.handler(request, container()), what=f"{req.method} {req.url}")
    )


# --- for Functions-only handlers ------------------------------------------------------------------
def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return to_http_response(api.json_response(body, status, headers))


def error_response(status: int, kind: str, message: str, **context: Any) -> func.HttpResponse:
    return to_http_response(api.error_response(status, kind, message, **context))


def parse_body(req: func.HttpRequest, model: type[M]) -> M:
    """The JSON body validated by ``model``; ``InvalidInput`` for missing, malformed or invalid JSON."""
    return api.parse_json_body(req.get_body() or b"", model)


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    return api.parse_model(model, data)


def json_endpoint(
    handler: Callable[[func.HttpRequest], Any],
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Wrap a Functions-only endpoint: its return value becomes a 200 JSON body (a ``func.HttpResponse``
    is kept as it is); errors become statuses as in the shared API."""

    def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        kept: list[func.HttpResponse] = []

        def call() -> Any:
            result = handler(req)
            if isinstance(result, func.HttpResponse):
                kept.append(result)
                return None
            return result

        answer = api.respond(call, what=f"{req.method} {req.url}")
        return kept[0] if kept else to_http_response(answer)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint

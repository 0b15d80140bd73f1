"""Calling the Functions app's handlers in tests, the way the host does, with real ``azure.functions``
objects.

``indexed()`` indexes ``function_app.app`` once per process (``get_functions()`` refuses a second call
on the same app object); ``handler(name)`` is the decorated user function; ``http_request`` and
``servicebus_message`` build the real request/message objects; ``run_on`` points the app's lazily
built Container at the test's settings.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from lightning.bootstrap import Container
from lightning.functions._runtime import use_container


@functools.cache
def indexed() -> dict[str, Any]:
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def handler(name: str) -> Callable[..., Any]:
    return indexed()[name].get_user_function()  # type: ignore[no-any-return]


@contextmanager
def run_on(container: Container) -> Iterator[Container]:
    use_container(container)
    try:
        yield container
    finally:
        use_container(None)


def http_request(
    method: str,
    path: str,
    *,
    route_params: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    raw_body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> func.HttpRequest:
    if raw_body is None:
        raw_body = b"" if body is None else json.dumps(body).encode()
    return func.HttpRequest(
        method,
        f"http://localhost:7071/api/{path}",
        headers=dict(headers or {}),
        params=dict(params or {}),
        route_params=dict(route_params or {}),
        body=raw_body,
    )


def call_http(name: str, request: func.HttpRequest) -> tuple[int, Any, func.HttpResponse]:
    response: func.HttpResponse = handler(name)(request)
    body = response.get_body()
    return response.status_code, json.loads(body) if body else None, response


def servicebus_message(body: Any, *, message_id: str = "m-1", delivery_count: int = 1) -> ServiceBusMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ServiceBusMessage(
        body=raw,
        message_id=message_id,
        delivery_count=delivery_count,
        application_properties={},
        user_properties={},
    )


def timer_request(past_due: bool = False) -> TimerRequest:
    return TimerRequest(past_due=past_due, schedule_status={}, schedule={})


def document_list(items: list[dict[str, Any]]) -> func.DocumentList:
    return func.DocumentList([func.Document.from_dict(item) for item in items])

"""The two hosts of the HTTP API, behind one small client, so one suite runs the same cases on both.

* ``functions``: the Function App's handlers as the host calls them — the function indexed for the
  route (``function_app.app``), a real ``func.HttpRequest``; a reviewer signs in through App Service
  authentication's ``x-ms-client-principal-name`` header.
* ``console``: ``lightning-loop serve-console``'s ASGI app served by uvicorn on a free loopback port and
  called over HTTP with httpx; a reviewer is the name of their ``LIGHTNING_CONSOLE_TOKEN`` entry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import azure.functions as func
import httpx

from lightning.bootstrap import Container
from lightning.console.app import RunningConsole, create_app, start
from lightning.console.auth import parse_tokens
from tests.integration.functions.harness import indexed

CONSOLE_TOKENS = "ana@contoso.com:ana-secret-123,bo:bo-secret-4567,anonymous-secret-890"
"""Two named reviewers and one token without a name (its labels record the console's --reviewer)."""
CONSOLE_REVIEWER = "console-reviewer"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict)
        assert set(self.body) == {"error"}, self.body
        assert self.body["error"]["message"]
        return self.body["error"]  # type: ignore[no-any-return]


class Host(Protocol):
    name: str
    container: Container

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        reviewer: str | None = None,
    ) -> Answer: ...


def _body(json_body: Any, raw: bytes | None) -> bytes:
    if raw is not None:
        return raw
    return b"" if json_body is None else json.dumps(json_body).encode()


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


class FunctionsHost:
    name = "functions"

    def __init__(self, container: Container) -> None:
        self.container = container
        self.routes = []
        for fn_name, fn in indexed().items():
            bindings = json.loads(fn.get_function_json())["bindings"]
            trigger = next((b for b in bindings if b["type"] == "httpTrigger"), None)
            if trigger is not None and "{*" not in trigger["route"]:
                for method in trigger["methods"]:
                    self.routes.append((method, _template(trigger["route"]), fn_name))

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        reviewer: str | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if reviewer is not None:
            sent["x-ms-client-principal-name"] = reviewer
        for route_method, pattern, fn_name in self.routes:
            matched = pattern.match(path)
            if matched and route_method == method:
                request = func.HttpRequest(
                    method,
                    f"http://localhost:7071/api/{path}",
                    headers=sent,
                    params=dict(params or {}),
                    route_params=matched.groupdict(),
                    body=_body(json_body, raw),
                )
                response: func.HttpResponse = indexed()[fn_name].get_user_function()(request)
                content = response.get_body()
                return Answer(
                    response.status_code,
                    json.loads(content) if content else None,
                    {
                        "content-type": response.mimetype,
                        **{k.lower(): v for k, v in response.headers.items()},
                    },
                )
        return Answer(404, {"error": {"type": "NotFound", "message": f"no function for {method} {path}"}})


class ConsoleHost:
    name = "console"

    def __init__(self, container: Container) -> None:
        self.container = container
        self.tokens = parse_tokens(CONSOLE_TOKENS)
        self.server: RunningConsole = start(
            create_app(container, tokens=self.tokens, reviewer=CONSOLE_REVIEWER)
        )
        self.client = httpx.Client(base_url=self.server.url, timeout=30.0, trust_env=False)

    def token_of(self, reviewer: str | None) -> str:
        wanted = next((t for t in self.tokens if t.name == reviewer), None)
        if reviewer is not None and wanted is None:
            raise AssertionError(f"no console token names {reviewer!r}; use one of CONSOLE_TOKENS")
        return (wanted or next(t for t in self.tokens if t.name is None)).value

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        reviewer: str | None = None,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self.token_of(reviewer)}", **(headers or {})}
        response = self.client.request(
            method, f"/api/{path}", params=params, content=_body(json_body, raw), headers=sent
        )
        return Answer(
            response.status_code,
            response.json() if response.content else None,
            {k.lower(): v for k, v in response.headers.items()},
        )

    def close(self) -> None:
        self.client.close()
        self.server.stop()

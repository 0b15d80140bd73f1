"""The agent over a real uvicorn server, spoken to with raw bytes: the workshop's PowerShell requests
exactly as ``Invoke-RestMethod`` sends them (no Accept header), and the API key when one is set."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pytest

from lightning.agent.queries import WORKSHOP_QUERIES
from lightning.bootstrap import Container
from lightning.ports.episodes import EpisodeQuery
from tests.integration.agent.conftest import RunningAgent
from tests.integration.agent.powershell import (
    POWERSHELL_DEFAULT_CONTENT_TYPE,
    RawResponse,
    convert_to_json_pwsh7,
    convert_to_json_winps51,
    exchange,
    exchange_expect_continue,
    pwsh7_request,
    winps51_head,
    workshop_hashtable,
)

KEY = "k-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
NEXT_KEY = "k-next-0b1c2d3e4f5a6b7c8d9e0f1a2b3c"
REQUEST_ID = "3f2b8c4e-9a1d-4e7f-b6c5-2d8a0e1f3b7c"


def port_of(running: RunningAgent) -> int:
    port = urlparse(running.url).port
    assert port is not None
    return port


def tool_answer(response: RawResponse) -> dict[str, Any]:
    assert response.status == 200, (response.status, response.body)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["id"] == REQUEST_ID
    return json.loads(body["result"]["content"][0]["text"])  # type: ignore[no-any-return]


def stored_queries(running: RunningAgent) -> list[str]:
    assert running.agent.capture.flush()
    episodes = Container(running.settings).episodes.query(EpisodeQuery(order="oldest"))
    return [e.state.query for e in episodes]


def pwsh7_body(query: str = WORKSHOP_QUERIES[0]) -> bytes:
    return convert_to_json_pwsh7(workshop_hashtable(query, REQUEST_ID))


# --- the workshop's PowerShell requests, byte for byte ---------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "extra"),
    [
        pytest.param(b"application/json", b"", id="pwsh7-no-accept"),
        pytest.param(b"application/json", b"Accept: \r\n", id="empty-accept"),
        pytest.param(b"application/json", b"Accept: */*\r\n", id="accept-anything"),
        pytest.param(POWERSHELL_DEFAULT_CONTENT_TYPE, b"", id="powershell-default-content-type"),
        pytest.param(b"application/json; charset=utf-8", b"", id="json-with-charset"),
    ],
)
def test_invoke_rest_method_as_powershell_7_sends_it(
    start_agent: Callable[..., RunningAgent], content_type: bytes, extra: bytes
) -> None:
    running = start_agent(capture=True)
    response = exchange(
        port_of(running),
        pwsh7_request(port_of(running), pwsh7_body(), content_type=content_type, extra=extra),
    )

    answer = tool_answer(response)
    assert answer["tool"] == "analyze_churn"
    assert answer["model_version"] == "local-base"
    assert stored_queries(running) == [WORKSHOP_QUERIES[0]]


def test_invoke_rest_method_as_windows_powershell_51_sends_it(
    start_agent: Callable[..., RunningAgent],
) -> None:
    running = start_agent(capture=True)
    port = port_of(running)
    body = convert_to_json_winps51(workshop_hashtable(WORKSHOP_QUERIES[0], REQUEST_ID))

    answer = tool_answer(exchange_expect_continue(port, winps51_head(port, body), body))

    assert answer["tool"] == "analyze_churn"
    assert stored_queries(running) == [WORKSHOP_QUERIES[0]]


def test_the_five_workshop_queries_answer_without_an_accept_header(
    start_agent: Callable[..., RunningAgent],
) -> None:
    running = start_agent(capture=True)
    port = port_of(running)
    for query in WORKSHOP_QUERIES:
        tool_answer(exchange(port, pwsh7_request(port, pwsh7_body(query))))
    assert stored_queries(running) == list(WORKSHOP_QUERIES)


def test_a_client_that_accepts_only_html_is_still_refused_as_json(
    start_agent: Callable[..., RunningAgent],
) -> None:
    running = start_agent(capture=True)
    port = port_of(running)
    response = exchange(port, pwsh7_request(port, pwsh7_body(), extra=b"Accept: text/html\r\n"))

    assert response.status == 406
    assert response.json()["error"]["code"] == -32600
    assert stored_queries(running) == []


# --- the API key -------------------------------------------------------------------------------------


@pytest.fixture
def keyed(start_agent: Callable[..., RunningAgent]) -> RunningAgent:
    return start_agent(capture=True, env={"AGENT_API_KEY": KEY, "AGENT_API_KEYS": f" {NEXT_KEY} ,"})


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param(b"", "no API key", id="none"),
        pytest.param(b"api-key: \r\n", "no API key", id="empty-api-key"),
        pytest.param(b"Authorization: Basic dXNlcjpwYXNz\r\n", "no API key", id="basic-auth"),
        pytest.param(b"api-key: " + KEY[:-1].encode() + b"\r\n", "not accepted", id="api-key-one-short"),
        pytest.param(b"api-key: " + KEY.encode() + b"x\r\n", "not accepted", id="api-key-one-long"),
        pytest.param(b"Authorization: Bearer wrong\r\n", "not accepted", id="wrong-bearer"),
        pytest.param(b"Authorization: Bearer " + KEY.upper().encode() + b"\r\n", "not accepted", id="case"),
    ],
)
def test_without_a_valid_key_message_is_401_with_a_json_rpc_error(
    keyed: RunningAgent, extra: bytes, reason: str
) -> None:
    port = port_of(keyed)
    response = exchange(port, pwsh7_request(port, pwsh7_body(), extra=extra))

    assert response.status == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == -32001
    assert reason in body["error"]["message"]
    assert "api-key" in body["error"]["message"]
    assert KEY not in response.body.decode()
    assert stored_queries(keyed) == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"api-key: " + KEY.encode() + b"\r\n", id="api-key-as-apim-sends-it"),
        pytest.param(b"Authorization: Bearer " + KEY.encode() + b"\r\n", id="bearer"),
        pytest.param(b"authorization: bearer " + KEY.encode() + b"\r\n", id="bearer-lowercase-scheme"),
        pytest.param(b"api-key: " + NEXT_KEY.encode() + b"\r\n", id="rotated-key-from-AGENT_API_KEYS"),
    ],
)
def test_a_valid_key_is_answered(keyed: RunningAgent, extra: bytes) -> None:
    port = port_of(keyed)
    answer = tool_answer(exchange(port, pwsh7_request(port, pwsh7_body(), extra=extra)))
    assert answer["tool"] == "analyze_churn"
    assert stored_queries(keyed) == [WORKSHOP_QUERIES[0]]


def test_windows_powershell_without_a_key_is_refused_before_sending_its_body(keyed: RunningAgent) -> None:
    port = port_of(keyed)
    body = convert_to_json_winps51(workshop_hashtable(WORKSHOP_QUERIES[0], REQUEST_ID))
    response = exchange_expect_continue(port, winps51_head(port, body), body)
    assert response.status == 401
    assert response.json()["error"]["code"] == -32001


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_key(keyed: RunningAgent, path: str) -> None:
    port = port_of(keyed)
    response = exchange(port, b"GET %s HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % (path.encode(), port))
    assert response.status == 200
    assert response.json()["status"] in ("ok", "ready")


def test_without_keys_configured_message_is_open(start_agent: Callable[..., RunningAgent]) -> None:
    running = start_agent(capture=False)
    port = port_of(running)
    assert tool_answer(exchange(port, pwsh7_request(port, pwsh7_body())))["tool"] == "analyze_churn"

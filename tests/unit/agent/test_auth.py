"""The agent's API keys: where they come from, how a request presents one, and the guard's answers."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from starlette.testclient import TestClient

from lightning.agent.auth import ApiKeyGuard, listen_address, presented_key
from lightning.bootstrap_agent import agent_api_keys
from lightning.config import Settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ()),
        ({"agent_api_key": ""}, ()),
        ({"agent_api_key": "alpha"}, ("alpha",)),
        ({"agent_api_keys": "alpha, beta,,"}, ("alpha", "beta")),
        ({"agent_api_key": "alpha", "agent_api_keys": "beta,alpha"}, ("alpha", "beta")),
    ],
)
def test_keys_come_from_agent_api_key_then_the_rotation_list(
    env: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert agent_api_keys(Settings(**env)) == expected


def test_the_keys_are_secrets_show_config_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_API_KEY", "alpha-secret")
    monkeypatch.setenv("AGENT_API_KEYS", "beta-secret")
    shown = Settings().masked()
    assert shown["AGENT_API_KEY"] == shown["AGENT_API_KEYS"] == "********"
    assert "alpha-secret" not in repr(Settings())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"api-key", b" k1 ")], b"k1"),
        ([(b"authorization", b"Bearer k2")], b"k2"),
        ([(b"authorization", b"bearer   k2 ")], b"k2"),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"authorization", b"Basic k3")], None),
        ([(b"api-key", b"k1"), (b"authorization", b"Bearer k2")], b"k1"),  # APIM's header first
        ([(b"api-key", b""), (b"authorization", b"Bearer k2")], b"k2"),
    ],
)
def test_a_request_presents_its_key_in_api_key_or_bearer(
    headers: list[tuple[bytes, bytes]], expected: bytes | None
) -> None:
    assert presented_key(headers) == expected


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("lightning.agent.auth.hmac.compare_digest", spy)
    guard = ApiKeyGuard(app=object(), keys=["first", "second"], path="/message")  # type: ignore[arg-type]

    assert guard.accepts(b"first") is True
    # No early exit on the first match: each key is compared, whichever matches.
    assert compared == [(b"first", b"first"), (b"first", b"second")]
    assert guard.accepts(b"third") is False


def test_a_guard_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        ApiKeyGuard(app=object(), keys=[], path="/message")  # type: ignore[arg-type]


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"inner"})


def test_the_guard_covers_its_path_only() -> None:
    client = TestClient(ApiKeyGuard(_ok, keys=["k"], path="/message"))  # type: ignore[arg-type]

    refused = client.post("/message", content=b"{}")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == -32001
    assert client.post("/message/", content=b"{}").status_code == 401
    assert client.post("/message", headers={"api-key": "k"}).text == "inner"
    assert client.get("/healthz").text == "inner"
    assert client.get("/anything-else").text == "inner"


@pytest.mark.parametrize(
    ("host", "keyed", "bind", "says"),
    [
        (None, False, "127.0.0.1", "listens on loopback only"),
        (None, True, "127.0.0.1", "needs the API key"),
        ("127.0.0.1", False, "127.0.0.1", "open to this machine"),
        ("0.0.0.0", False, "0.0.0.0", "warning: no AGENT_API_KEY set, so POST /message on 0.0.0.0 is open"),
        ("0.0.0.0", True, "0.0.0.0", "needs the API key"),
    ],
)
def test_serve_agent_keeps_to_loopback_without_a_host_and_says_who_may_call(
    host: str | None, keyed: bool, bind: str, says: str
) -> None:
    address, note = listen_address(host, keyed=keyed)
    assert address == bind
    assert says in note

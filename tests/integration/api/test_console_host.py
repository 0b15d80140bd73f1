"""What only the console host does: bearer tokens, who the reviewer is, the page's security headers,
cross-site and DNS-rebinding refusals — and the Function App's route for the same page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import azure.functions as func
import httpx
import pytest

from lightning.bootstrap import Container
from lightning.console.app import RunningConsole, create_app, start
from lightning.console.assets import STATIC_DIR, asset_names
from lightning.console.auth import parse_tokens
from lightning.domain.errors import InvalidInput
from tests.integration.api.data import AGENT
from tests.integration.api.hosts import CONSOLE_REVIEWER, CONSOLE_TOKENS, ConsoleHost
from tests.integration.functions.harness import call_http, handler, http_request


@pytest.fixture
def console(container: Container) -> Iterator[ConsoleHost]:
    served = ConsoleHost(container)
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def open_console(container: Container) -> Iterator[RunningConsole]:
    """No token configured (loopback use): the API is open and labels record the reviewer."""
    served = start(create_app(container, tokens=[], reviewer="solo", loopback_only=True))
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-secret-000",
        "Bearer ana@contoso.com:ana-secret-12",
        "Basic YW5hOnNlY3JldA==",
        "Bearer",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/review-queue"), ("POST", "/api/episodes/api-001/label"), ("GET", "/api/nope")],
)
def test_every_api_call_needs_the_token(
    console: ConsoleHost, authorization: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = console.client.request(
        method, path, params={"agent_id": AGENT}, headers=headers, content=b'{"reward": 1}'
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "Unauthorized"
    assert not console.container.episodes.get("api-001").human_labeled


def test_an_unknown_api_route_is_json_404_once_authenticated(console: ConsoleHost) -> None:
    answer = console.call("GET", "nope")
    assert answer.status == 404
    assert answer.error["type"] == "NotFound"
    assert console.call("DELETE", "episodes/api-001").status == 404


def test_the_reviewer_is_the_tokens_name_never_a_header(console: ConsoleHost) -> None:
    answer = console.call(
        "POST",
        "episodes/api-001/label",
        json_body={"reward": 0.9},
        headers={"x-ms-client-principal-name": "mallory"},
        reviewer="bo",
    )
    assert answer.status == 200
    assert answer.body["label"]["labeled_by"] == "bo"
    unnamed = console.call("POST", "episodes/api-002/label", json_body={"reward": 0.9})
    assert unnamed.body["label"]["labeled_by"] == CONSOLE_REVIEWER


def test_without_a_token_the_loopback_console_is_open_to_loopback_names_only(
    open_console: RunningConsole, container: Container
) -> None:
    with httpx.Client(base_url=open_console.url, trust_env=False) as client:
        assert client.get("/api/whoami").json() == {"caller": "solo"}
        rebound = client.get("/api/whoami", headers={"Host": "attacker.example:8765"})
        assert rebound.status_code == 421
        assert client.get("/api/whoami", headers={"Host": "localhost:8765"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_site_request_is_refused(
    open_console: RunningConsole, container: Container, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=open_console.url, trust_env=False) as client:
        response = client.post("/api/episodes/api-001/label", content=b'{"reward": 0.1}', headers=headers)
    assert response.status_code == 403
    assert not container.episodes.get("api-001").human_labeled


def test_a_same_origin_browser_request_is_served(open_console: RunningConsole) -> None:
    origin = open_console.url
    with httpx.Client(base_url=origin, trust_env=False) as client:
        response = client.get("/api/whoami", headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200


def test_the_page_and_its_files_come_with_a_strict_content_security_policy(console: ConsoleHost) -> None:
    page = console.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in asset_names():
        response = console.client.get(f"/{name}")
        assert response.status_code == 200, name
        assert "content-security-policy" in response.headers
    assert console.client.get("/console.js").headers["content-type"].startswith("text/javascript")
    api = console.call("GET", "agents")
    assert "content-security-policy" in api.headers
    assert api.headers["cache-control"] == "no-store"
    for path in ("/../pyproject.toml", "/app.py", "/%2e%2e%2fapp.py", "/static/console.js"):
        assert console.client.get(path).status_code == 404, path


def test_the_page_has_no_inline_script_or_style_and_never_parses_data_as_html() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="console.js">']
    assert "</script>" in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "<style" not in html
    for script in STATIC_DIR.glob("*.js"):
        code = script.read_text()
        for sink in (
            ".innerHTML",
            ".outerHTML",
            ".insertAdjacentHTML",
            "DOMParser",
            "createContextualFragment",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('style'",
        ):
            assert sink not in code, f"{script.name} uses {sink}"


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("", []),
        ("ana:secret-123", ["ana"]),
        ("ana:secret-123, bo:other-secret-4 ,bare-secret-99", ["ana", "bo", None]),
        ("x:with:colon-in-secret", ["x"]),
    ],
)
def test_token_setting(setting: str, names: list[str | None]) -> None:
    tokens = parse_tokens(setting)
    assert [t.name for t in tokens] == names
    assert all("secret" not in repr(t) for t in tokens)


@pytest.mark.parametrize("setting", [":secret-123", "ana:", "ana:short", "short"])
def test_a_bad_token_setting_is_one_clear_error(setting: str) -> None:
    with pytest.raises(InvalidInput, match="LIGHTNING_CONSOLE_TOKEN"):
        parse_tokens(setting)


def test_console_tokens_fixture_is_valid() -> None:
    assert len(parse_tokens(CONSOLE_TOKENS)) == 3


# --- the Function App serves the same page ------------------------------------------------------------
def test_the_function_app_serves_the_console_page(container: Container) -> None:
    request = http_request("GET", "console/", route_params={"path": ""})
    response = handler("console_page")(request)
    assert response.status_code == 200
    assert response.get_body() == (STATIC_DIR / "index.html").read_bytes()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = handler("console_page")(http_request("GET", "console/api.js", route_params={"path": "api.js"}))
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    bare = handler("console_page")(
        func.HttpRequest(
            "GET", "http://localhost:7071/api/console", headers={}, params={}, route_params={}, body=b""
        )
    )
    assert (bare.status_code, bare.headers["Location"]) == (308, "console/")
    for path in ("../function_app.py", "nope.js", "app.py"):
        status, body, _ = call_http(
            "console_page", http_request("GET", f"console/{path}", route_params={"path": path})
        )
        assert status == 404, path
        assert body["error"]["type"] == "NotFound"

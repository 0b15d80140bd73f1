"""``lightning-loop serve-console``: what it refuses (one line, exit 2) and a real run as a user starts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lightning.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "console.example.com"])
def test_a_host_other_than_loopback_needs_a_token(capsys: pytest.CaptureFixture[str], host: str) -> None:
    code, out, err = run(capsys, "serve-console", "--host", host, "--port", "0")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: refusing to serve the console on {host} without a token")
    assert "LIGHTNING_CONSOLE_TOKEN" in err


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--port", "70000"], {}, "--port must be between 0 and 65535"),
        (["--reviewer", " "], {}, "--reviewer must not be empty"),
        ([], {"LIGHTNING_CONSOLE_TOKEN": ":no-name-secret"}, "LIGHTNING_CONSOLE_TOKEN"),
        ([], {"LIGHTNING_CONSOLE_TOKEN": "ana:short"}, "at least 8 characters"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "serve-console", *args)
    assert code == 2
    assert err.count("\n") == 1
    assert says in err


def test_a_missing_extra_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    code, _, err = run(capsys, "serve-console", "--port", "0")
    assert code == 1
    assert err.count("\n") == 1
    assert "install `lightning-loop[console]`" in err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """serve-console as a user runs it: a process, a token, a port it picks itself."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LIGHTNING_CONSOLE_TOKEN": "ana:e2e-secret-123",
        "LIGHTNING_HOME": str(tmp_path / "home"),
    }
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lightning.cli", "serve-console", "--port", "0", "--reviewer", "fallback"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            url = None
            while url is None:
                found = re.search(r"Review console on (http://\S+/)", log.read_text())
                if found:
                    url = found.group(1)
                elif proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve-console did not start: {log.read_text()}")
                else:
                    time.sleep(0.05)
            yield url, log
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_serve_console_serves_the_page_and_guards_the_api(served: tuple[str, Path]) -> None:
    url, log = served
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
        deadline = time.monotonic() + 20
        while True:
            try:
                page = client.get("/")
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert page.status_code == 200
        assert "Content-Security-Policy" in page.headers
        assert client.get("/api/agents").status_code == 401
        me = client.get("/api/whoami", headers={"Authorization": "Bearer ana:e2e-secret-123"})
        assert me.json() == {"caller": "ana"}
    assert "e2e-secret-123" not in log.read_text()  # the token is never printed

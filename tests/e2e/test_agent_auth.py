"""``serve-agent`` as a real process: where it listens, what it says about access, and the API key
end to end (the workshop's PowerShell request as raw bytes, ``simulate-traffic`` with the key)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lightning.agent.queries import WORKSHOP_QUERIES
from lightning.agent.runtime import free_port
from lightning.cli import main
from tests.integration.agent.powershell import (
    convert_to_json_pwsh7,
    exchange,
    pwsh7_request,
    workshop_hashtable,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "e2e-3b9f1d7a5c2e4086b1a3c5e7d9f0b2a4"


@dataclass
class AgentProcess:
    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def listening_addresses(self) -> set[str]:
        connections = psutil.Process(self.process.pid).net_connections(kind="tcp")
        return {
            c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
        }

    def stop(self) -> str:
        """Stop the process; its stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@pytest.fixture
def serve_agent(use_model_server: Any) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> AgentProcess:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "lightning.cli", "serve-agent", "--port", str(port), *args],
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running = AgentProcess(port, process)
        started.append(running)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{running.url}/healthz", timeout=1).status_code == 200:
                    return running
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve-agent did not start: {running.stop()}")
            time.sleep(0.1)

    yield start
    for running in started:
        running.stop()


def workshop_request(port: int, extra: bytes = b"") -> bytes:
    body = convert_to_json_pwsh7(workshop_hashtable(WORKSHOP_QUERIES[0], "1"))
    return pwsh7_request(port, body, extra=extra)


def test_without_a_key_it_listens_on_loopback_only_and_says_so(
    serve_agent: Callable[..., AgentProcess],
) -> None:
    agent = serve_agent()
    assert agent.listening_addresses() == {"127.0.0.1"}
    assert exchange(agent.port, workshop_request(agent.port)).status == 200
    err = agent.stop()
    assert "no AGENT_API_KEY set, so POST /message is open and the agent listens on loopback only" in err


def test_an_explicit_host_without_a_key_listens_there_with_a_warning(
    serve_agent: Callable[..., AgentProcess],
) -> None:
    agent = serve_agent("--host", "0.0.0.0")
    assert agent.listening_addresses() == {"0.0.0.0"}
    err = agent.stop()
    assert "warning: no AGENT_API_KEY set, so POST /message on 0.0.0.0 is open" in err


def test_with_a_key_message_needs_it_and_simulate_traffic_sends_it(
    serve_agent: Callable[..., AgentProcess],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = serve_agent(env={"AGENT_API_KEY": KEY})

    refused = exchange(agent.port, workshop_request(agent.port))
    assert refused.status == 401
    assert refused.json()["error"]["code"] == -32001
    assert (
        exchange(agent.port, workshop_request(agent.port, b"api-key: " + KEY.encode() + b"\r\n")).status
        == 200
    )
    assert httpx.get(f"{agent.url}/healthz").status_code == 200

    assert main(["simulate-traffic", "--agent-url", agent.url]) == 1  # no key in this environment
    out = capsys.readouterr()
    assert "Failed: 5" in out.out
    assert "no API key" in out.err
    monkeypatch.setenv("AGENT_API_KEY", KEY)
    assert main(["simulate-traffic", "--agent-url", agent.url]) == 0
    block = dict(line.split(": ", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert (block["Sent"], block["Failed"]) == ("5", "0")

    err = agent.stop()
    assert "POST /message needs the API key (api-key header or Authorization: Bearer)" in err
    assert KEY not in err

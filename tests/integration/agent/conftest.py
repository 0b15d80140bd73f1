"""A running agent for integration tests: uvicorn on a free port in a thread, real model server, SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lightning.agent.core import AnalyticsAgent
from lightning.agent.runtime import bind_socket
from lightning.agent.server import create_app
from lightning.bootstrap_agent import agent_api_keys, build_agent
from lightning.config import Settings, get_settings


@dataclass
class RunningAgent:
    url: str
    agent: AnalyticsAgent
    settings: Settings
    _server: Any
    _thread: threading.Thread

    def post(self, body: Any, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/message", json=body, timeout=30, **kwargs)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def run_agent(agent: AnalyticsAgent, settings: Settings) -> RunningAgent:
    import uvicorn

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(agent, host="127.0.0.1", api_keys=agent_api_keys(settings))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="agent")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "agent thread died while starting"
        assert time.monotonic() < deadline, "agent did not start in 60 s"
        time.sleep(0.01)
    return RunningAgent(f"http://127.0.0.1:{port}", agent, settings, server, thread)


@pytest.fixture
def start_agent(
    use_model_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RunningAgent]]:
    """``start_agent(capture=True, env={...}, **build_agent kwargs)`` → a RunningAgent (stopped at teardown)."""
    started: list[RunningAgent] = []

    def start(*, capture: bool = True, env: dict[str, str] | None = None, **kwargs: Any) -> RunningAgent:
        monkeypatch.setenv("ENABLE_EPISODE_CAPTURE", "true" if capture else "false")
        monkeypatch.setenv("CAPTURE_FLUSH_SECONDS", "0.05")
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        settings = get_settings()
        agent = build_agent(settings, agent_id=kwargs.pop("agent_id", "autonomous-agent"), **kwargs)
        running = run_agent(agent, settings)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()

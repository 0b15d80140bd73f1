"""Wiring and serving the agent: ``build_agent(settings, agent_id=…)`` and ``serve(…)`` (``serve-agent``).

``build_agent`` reads everything from ``Settings``: the agent's registered
definition, the chat model (``Container.chat``), model selection
(``USE_TUNED_MODEL``/``TUNED_MODEL_NAME``, the registry, the base model) and
capture (``ENABLE_EPISODE_CAPTURE``). ``serve`` makes sure a model is reachable —
with ``LIGHTNING_TRAINER=local`` and nothing answering at
``LIGHTNING_MODEL_SERVER`` it starts the local model server in this process —
then runs uvicorn until Ctrl+C/SIGTERM, flushing captured episodes on the way out.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lightning.adapters.net import bind_listening_socket
from lightning.agent.auth import agent_api_keys
from lightning.agent.core import AnalyticsAgent
from lightning.agent.models import ModelSelector
from lightning.agent.telemetry import configure_telemetry
from lightning.capture import EpisodeCapture
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from lightning.ports.chat import ChatModel

logger = logging.getLogger(__name__)


def build_agent(
    settings: Settings,
    *,
    agent_id: str,
    follow_registry: bool = False,
    chat: ChatModel | None = None,
    capture: EpisodeCapture | None = None,
) -> AnalyticsAgent:
    """The agent as configured; ``chat``/``capture`` override the configured ones (tests, benchmarks)."""
    from lightning.bootstrap import Container

    container = Container(settings)
    definition = container.agents.get(agent_id)
    models = ModelSelector.from_settings(
        settings,
        agent_id=agent_id,
        follow_registry=follow_registry,
        registry=(lambda: container.models) if follow_registry else None,
    )
    if capture is None:
        capture = EpisodeCapture.from_settings(settings)
    return AnalyticsAgent(definition=definition, chat=chat or container.chat, models=models, capture=capture)


def ensure_model_server(settings: Settings) -> Any | None:
    """Start the local model server in-process when ``trainer=local`` and none answers; returns it (or None)."""
    if settings.trainer != "local":
        return None
    from lightning.adapters.modelserver.server import is_serving, start_server

    url = settings.lightning_model_server
    if is_serving(url):
        return None
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigurationError(
            f"no model server answers at LIGHTNING_MODEL_SERVER={url}; start it there (serve-models) "
            "or point LIGHTNING_MODEL_SERVER at a running one"
        )
    port = parsed.port or 8700
    running = start_server(
        data_dir=settings.models_dir, host="127.0.0.1" if host == "localhost" else host, port=port
    )
    logger.info("started the local model server on %s", running.base_url)
    return running


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line ``ConfigurationError`` when the port is taken."""
    return bind_listening_socket(host, port, what="agent")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(
    settings: Settings,
    *,
    agent_id: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    follow_registry: bool = True,
    start_model_server: bool = True,
    on_listening: Callable[[str, AnalyticsAgent], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Run the agent in the foreground until interrupted."""
    import uvicorn

    from lightning.agent.server import create_app

    sock = bind_socket(host, port)  # first: a taken port fails before anything else starts
    model_server = None
    agent: AnalyticsAgent | None = None
    try:
        model_server = ensure_model_server(settings) if start_model_server else None
        configure_telemetry(settings, service_name=agent_id)
        agent = build_agent(settings, agent_id=agent_id, follow_registry=follow_registry)
        app = create_app(agent, host=host, api_keys=agent_api_keys(settings))
        config = uvicorn.Config(
            app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        if on_listening is not None:
            on_listening(f"http://{host}:{sock.getsockname()[1]}", agent)
        server.run(sockets=[sock])
    finally:
        sock.close()
        if agent is not None:
            agent.close()
        if model_server is not None:
            model_server.stop()

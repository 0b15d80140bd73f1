"""Serving the agent (``serve-agent``): ``serve(build_agent, …)`` and the helpers it needs.

``lightning.bootstrap_agent`` builds the agent from settings (``build_agent``: the agent's registered
definition, the chat model, model selection from ``USE_TUNED_MODEL``/``TUNED_MODEL_NAME``, the
registry and the base model, and capture from ``ENABLE_EPISODE_CAPTURE``) and calls ``serve``
(``serve_agent``). ``serve`` binds the port first, makes sure a model is reachable — given a local
model server URL and nothing answering there, it starts the model server in this process — then
runs uvicorn until Ctrl+C/SIGTERM, flushing captured episodes on the way out.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.adapters.net import bind_listening_socket
from lightning.agent.core import AnalyticsAgent
from lightning.agent.telemetry import configure_telemetry
from lightning.domain.errors import ConfigurationError

logger = logging.getLogger(__name__)


def ensure_model_server(url: str, *, data_dir: Path) -> Any | None:
    """Start the local model server in-process at ``url`` when none answers there; returns it (or None)."""
    from lightning.adapters.modelserver.server import is_serving, start_server

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
    running = start_server(data_dir=data_dir, host="127.0.0.1" if host == "localhost" else host, port=port)
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
    build_agent: Callable[[], AnalyticsAgent],
    *,
    agent_id: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    local_model_server: tuple[str, Path] | None = None,
    telemetry_connection_string: str | None = None,
    api_keys: Sequence[str] = (),
    on_listening: Callable[[str, AnalyticsAgent], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Run the agent in the foreground until interrupted.

    ``local_model_server`` (URL, models folder): start the model server there first when none answers.
    ``telemetry_connection_string``: export spans to Application Insights as ``agent_id``.
    ``api_keys``: the keys ``POST /message`` accepts (none: open).
    """
    import uvicorn

    from lightning.agent.server import create_app

    sock = bind_socket(host, port)  # first: a taken port fails before anything else starts
    model_server = None
    agent: AnalyticsAgent | None = None
    try:
        if local_model_server is not None:
            url, data_dir = local_model_server
            model_server = ensure_model_server(url, data_dir=data_dir)
        configure_telemetry(telemetry_connection_string, service_name=agent_id)
        agent = build_agent()
        app = create_app(agent, host=host, api_keys=api_keys)
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

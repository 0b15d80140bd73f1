"""Starting and stopping the model server: blocking (the CLI) or in a background thread (tests, agent).

- ``serve(host=…, port=…, data_dir=…)``: runs until interrupted (``serve-models``).
- ``start_server(data_dir=…, port=0)``: starts uvicorn in a daemon thread on a free
  port (or the given one) and returns a ``RunningServer`` with ``base_url``
  (ending in ``/v1``) and ``stop()``; used by the test fixture and by
  ``serve-agent`` when no server is running.
- ``is_serving(base_url)``: whether a model server answers at ``base_url``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.adapters.modelserver.app import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_JSON_BYTES,
    ServerState,
    create_app,
)
from lightning.adapters.net import bind_listening_socket, start_in_thread
from lightning.domain.errors import ConfigurationError


def _open_state(data_dir: Path, max_file_bytes: int, sock: socket.socket) -> ServerState:
    try:
        return ServerState.open(data_dir, max_file_bytes=max_file_bytes)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot use {data_dir} as the model server's data directory ({exc.strerror or exc}); "
            "pass a writable --data-dir"
        ) from None


def _uvicorn_server(state: ServerState, log_level: str) -> Any:
    import uvicorn

    config = uvicorn.Config(
        create_app(state), log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)


@dataclass
class RunningServer:
    """A model server running in this process."""

    host: str
    port: int
    data_dir: Path
    state: ServerState
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    log_level: str = "warning",
    ready_timeout: float = 15.0,
) -> RunningServer:
    """Run the server in a daemon thread; returns once it accepts requests."""
    sock = bind_listening_socket(host, port, what="model server")
    state = _open_state(data_dir, max_file_bytes, sock)
    state.max_json_bytes = max_json_bytes
    actual_port = sock.getsockname()[1]
    server = _uvicorn_server(state, log_level)
    thread = start_in_thread(server, sock, name="model-server", ready_timeout=ready_timeout)
    return RunningServer(
        host=host, port=actual_port, data_dir=data_dir, state=state, _server=server, _thread=thread
    )


def serve(
    *,
    host: str,
    port: int,
    data_dir: Path,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    log_level: str = "info",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Run the server in the foreground until Ctrl+C / SIGTERM; ``on_listening(base_url)`` once bound."""
    sock = bind_listening_socket(host, port, what="model server")
    state = _open_state(data_dir, max_file_bytes, sock)
    if on_listening is not None:
        on_listening(f"http://{host}:{sock.getsockname()[1]}/v1")
    try:
        _uvicorn_server(state, log_level).run(sockets=[sock])
    finally:
        sock.close()


def is_serving(base_url: str, *, timeout: float = 1.0) -> bool:
    """True when a model server answers ``GET {base_url}/models``."""
    import httpx

    try:
        # trust_env=False: a proxy from the environment must not intercept a loopback health check
        response = httpx.get(base_url.rstrip("/") + "/models", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200

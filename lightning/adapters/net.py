"""Listening sockets for the project's own HTTP servers (the local model server, the agent, the console),
and running one in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from lightning.domain.errors import ConfigurationError


def bind_listening_socket(host: str, port: int, *, what: str = "server") -> socket.socket:
    """A non-blocking listening socket, or a one-line ``ConfigurationError`` when the port is taken."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another {what} running? pass --port"
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def start_in_thread(server: Any, sock: socket.socket, *, name: str, ready_timeout: float) -> threading.Thread:
    """Run a ``uvicorn.Server`` on ``sock`` in a daemon thread; returns the thread once the server accepts
    connections, or a ``ConfigurationError`` naming ``name`` when it did not start in ``ready_timeout``."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            host, port = sock.getsockname()[:2]
            raise ConfigurationError(f"the {name.replace('-', ' ')} did not start on {host}:{port}")
        time.sleep(0.01)
    return thread

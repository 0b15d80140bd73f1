"""Listening sockets for the project's own HTTP servers (the local model server, the agent)."""

from __future__ import annotations

import socket

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

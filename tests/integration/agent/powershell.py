"""The bytes PowerShell's ``Invoke-RestMethod`` puts on the wire for the workshop's request, and a raw
socket to send them: httpx and urllib add an ``Accept`` header of their own, so they cannot test a
client that sends none.

The workshop (Exercise 4, step 4.2) runs, for each query::

    $body = @{ jsonrpc = "2.0"; id = [guid]::NewGuid().ToString(); method = "tools/call";
               params = @{ name = "analyze_query"; arguments = @{ query = $query } } } | ConvertTo-Json -Depth 5
    Invoke-RestMethod -Uri "http://localhost:8080/message" -Method Post -Body $body -ContentType "application/json"

PowerShell 7 (``HttpClient``) sends Host, User-Agent, Content-Type and Content-Length, and no Accept.
Windows PowerShell 5.1 (``HttpWebRequest``) orders them differently and adds ``Expect: 100-continue``
and ``Connection: Keep-Alive``: it sends the body only after the server's ``100 Continue``.
``ConvertTo-Json`` writes CRLF line ends on Windows, two-space indents on 7 and four spaces plus two
after each colon on 5.1; a hashtable's keys come out in no fixed order.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

PWSH7_USER_AGENT = b"Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.6"
WINPS51_USER_AGENT = b"Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.4391"
# Invoke-RestMethod -Method Post -Body <string> without -ContentType
POWERSHELL_DEFAULT_CONTENT_TYPE = b"application/x-www-form-urlencoded"


def workshop_hashtable(query: str, request_id: str) -> dict[str, Any]:
    # The order a PowerShell hashtable happened to enumerate in (not the order written).
    return {
        "method": "tools/call",
        "params": {"name": "analyze_query", "arguments": {"query": query}},
        "id": request_id,
        "jsonrpc": "2.0",
    }


def convert_to_json_pwsh7(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=2).replace("\n", "\r\n").encode("utf-8")


def convert_to_json_winps51(value: dict[str, Any]) -> bytes:
    text = json.dumps(value, indent=4, separators=(",", ":  "))
    return text.replace("\n", "\r\n").encode("utf-8")


def pwsh7_request(
    port: int, body: bytes, *, content_type: bytes | None = b"application/json", extra: bytes = b""
) -> bytes:
    """PowerShell 7's request head and body; ``extra`` is more header lines (each ending CRLF)."""
    head = b"POST /message HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: %s\r\n" % (port, PWSH7_USER_AGENT)
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    head += extra + b"Content-Length: %d\r\n\r\n" % len(body)
    return head + body


def winps51_head(port: int, body: bytes) -> bytes:
    """Windows PowerShell 5.1's request head (the body follows the server's 100 Continue)."""
    return (
        b"POST /message HTTP/1.1\r\n"
        b"User-Agent: " + WINPS51_USER_AGENT + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Host: localhost:%d\r\n"
        b"Content-Length: %d\r\n"
        b"Expect: 100-continue\r\n"
        b"Connection: Keep-Alive\r\n"
        b"\r\n"
    ) % (port, len(body))


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _read_head(sock: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {bytes(buffer)!r}")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _parse(head: bytes, sock: socket.socket, buffer: bytearray, deadline: float) -> RawResponse:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return RawResponse(int(status_line.split()[1]), headers, bytes(buffer[:length]))


def exchange(port: int, request: bytes, *, timeout: float = 60.0) -> RawResponse:
    """Send exactly ``request`` and read one response."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        buffer = bytearray()
        return _parse(_read_head(sock, buffer, deadline), sock, buffer, deadline)


def exchange_expect_continue(port: int, head: bytes, body: bytes, *, timeout: float = 60.0) -> RawResponse:
    """Windows PowerShell 5.1: send the head, wait for ``100 Continue``, then send the body.

    A server that answers early (a 401 before reading the body) gets no body, as .NET does.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        buffer = bytearray()
        interim = _read_head(sock, buffer, deadline)
        if not interim.startswith(b"HTTP/1.1 100"):
            return _parse(interim, sock, buffer, deadline)
        sock.sendall(body)
        return _parse(_read_head(sock, buffer, deadline), sock, buffer, deadline)

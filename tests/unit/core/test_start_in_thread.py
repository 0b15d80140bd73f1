"""``start_in_thread``'s refusal: a server that never starts is a one-line ConfigurationError, not a hang
(the success path runs in every test that starts the model server or the console)."""

from __future__ import annotations

import pytest

from lightning.adapters.net import bind_listening_socket, start_in_thread
from lightning.domain.errors import ConfigurationError


class NeverStarts:
    """Exits at once without ever accepting connections, as a server whose start-up failed does."""

    started = False
    should_exit = False

    def run(self, sockets: object) -> None:
        return None


def test_a_server_that_never_starts_is_a_configuration_error_naming_it() -> None:
    sock = bind_listening_socket("127.0.0.1", 0)
    server = NeverStarts()
    try:
        with pytest.raises(ConfigurationError, match=r"^the model server did not start on 127\.0\.0\.1:\d+$"):
            start_in_thread(server, sock, name="model-server", ready_timeout=5.0)
    finally:
        sock.close()
    assert server.should_exit

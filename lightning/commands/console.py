"""``serve-console``: the review console (``lightning/console``) on this machine."""

from __future__ import annotations

import ipaddress
import sys

import typer

from lightning.commands._common import container, current_user
from lightning.domain.errors import InvalidInput
from lightning.extras import require_extra


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def register(app: typer.Typer) -> None:
    @app.command("serve-console")
    def serve_console(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
        port: int = typer.Option(8765, "--port", help="Port to listen on (0 picks a free one)."),
        reviewer: str | None = typer.Option(
            None,
            "--reviewer",
            help="Name recorded as labeled_by (default: the token's name, else $LIGHTNING_USER, else your OS user).",
        ),
    ) -> None:
        """Serve the review console: review queue, labels and corrections, judge vs people, golden set
        and loop status, on the same HTTP API as the Function App. Ctrl+C stops it.

        With LIGHTNING_CONSOLE_TOKEN=name:secret[,name:secret…] every API call needs that bearer token
        (open the page once with #token=name:secret); a host other than loopback requires one."""
        from lightning.console.auth import parse_tokens

        if not 0 <= port < 65536:
            raise InvalidInput(
                f"--port must be between 0 and 65535 (0 picks a free port), got {port}", field="port"
            )
        if reviewer is not None and not reviewer.strip():
            raise InvalidInput("--reviewer must not be empty", field="reviewer")
        c = container()
        secret = c.settings.lightning_console_token
        tokens = parse_tokens(secret.get_secret_value() if secret is not None else None)
        loopback = _loopback(host)
        if not loopback and not tokens:
            raise InvalidInput(
                f"refusing to serve the console on {host} without a token: set LIGHTNING_CONSOLE_TOKEN="
                "name:secret (see docs/console.md), or listen on 127.0.0.1",
                field="host",
            )
        require_extra("console", command="serve-console")
        from lightning.console.app import create_app, serve

        name = (reviewer or "").strip() or current_user(c.settings.lightning_user, fallback="console")
        console_app = create_app(c, tokens=tokens, reviewer=name, loopback_only=loopback)

        def announce(url: str) -> None:
            access = (
                f"API needs a token: open {url}#token=<your LIGHTNING_CONSOLE_TOKEN entry> once"
                if tokens
                else "no token (loopback only)"
            )
            sys.stderr.write(
                f"Review console on {url} ({access}; labels by {name} unless the token names someone); Ctrl+C stops it\n"
            )
            sys.stderr.flush()

        serve(console_app, host=host, port=port, on_listening=announce)

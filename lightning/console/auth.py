"""The console's bearer tokens (``LIGHTNING_CONSOLE_TOKEN``) and who a request comes from.

``LIGHTNING_CONSOLE_TOKEN`` holds one token or several, comma-separated. A token is ``name:secret``
(the reviewer's name is recorded as ``labeled_by`` on their labels) or a bare ``secret`` (labels then
record ``--reviewer``). The page sends the whole token, ``Authorization: Bearer name:secret``. Tokens
are compared in constant time; none is ever logged or printed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from lightning.domain.errors import InvalidInput


@dataclass(frozen=True)
class ConsoleToken:
    value: str
    name: str | None

    def __repr__(self) -> str:  # never show the secret
        return f"ConsoleToken(name={self.name!r})"


def parse_tokens(setting: str | None) -> list[ConsoleToken]:
    """The tokens of a ``LIGHTNING_CONSOLE_TOKEN`` value (empty: no token, the API is open)."""
    tokens = []
    for raw in (setting or "").split(","):
        value = raw.strip()
        if not value:
            continue
        name, sep, secret = value.partition(":")
        if sep and (not name.strip() or not secret):
            raise InvalidInput(
                "LIGHTNING_CONSOLE_TOKEN: each token is name:secret or a bare secret, comma-separated; "
                "one has an empty name or secret",
                field="lightning_console_token",
            )
        if len(secret if sep else value) < 8:
            raise InvalidInput(
                "LIGHTNING_CONSOLE_TOKEN: a secret must be at least 8 characters (e.g. `openssl rand -hex 16`)",
                field="lightning_console_token",
            )
        tokens.append(ConsoleToken(value=value, name=name.strip() if sep else None))
    return tokens


def authenticate(authorization: str | None, tokens: list[ConsoleToken]) -> ConsoleToken | None:
    """The token an ``Authorization: Bearer …`` header carries, if it is one of ``tokens``."""
    if not authorization:
        return None
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    given = presented.strip().encode("utf-8")
    found = None
    for token in tokens:  # every token is compared, so timing says nothing about which one matched
        if hmac.compare_digest(given, token.value.encode("utf-8")):
            found = token
    return found

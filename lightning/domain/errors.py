"""The one error tree of Lightning Loop.

Every error a user can see is a ``LightningError``; entry points map them to
exit codes (CLI), HTTP statuses (Functions) and retries (queues)::

    LightningError
    ├── NotFound            – an id that does not exist (HTTP 404)
    ├── Conflict            – a stale etag, a name already taken, a bad state transition (HTTP 409)
    ├── InvalidInput        – bad input from a user or a file (HTTP 400)
    ├── ConfigurationError  – settings missing or contradictory
    └── ProviderError       – a remote service refused (permanent)
        └── TransientProviderError – try again later (429, 5xx, timeouts)

Messages say what went wrong *and* what to do next; the ids involved are
attributes so callers never parse messages.
"""

from __future__ import annotations


class LightningError(Exception):
    """Base of every error Lightning Loop raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(LightningError):
    """Something named by id does not exist."""

    http_status = 404

    def __init__(self, kind: str, ident: str, hint: str | None = None) -> None:
        message = f"{kind} {ident!r} not found"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(message)
        self.kind = kind
        self.ident = ident


class Conflict(LightningError):
    """The write lost a race or would break an invariant (stale etag, taken name, bad transition)."""

    http_status = 409

    def __init__(self, message: str, *, ident: str | None = None) -> None:
        super().__init__(message)
        self.ident = ident


class InvalidInput(LightningError):
    """Input that can never succeed as given: fix it and try again."""

    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigurationError(LightningError):
    """Settings are missing or contradict each other."""

    http_status = 500


class ProviderError(LightningError):
    """A remote provider (Azure OpenAI, Kubernetes, storage) refused the request for good."""

    http_status = 502

    def __init__(self, message: str, *, provider: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code


class TransientProviderError(ProviderError):
    """A remote provider failed in a way that may pass: retry with backoff."""

    http_status = 503

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.retry_after = retry_after

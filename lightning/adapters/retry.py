"""Retrying remote calls: exponential backoff with full jitter, honoring ``Retry-After``.

Shared by adapters that talk to remote services (the OpenAI fine-tuning provider first). The adapter
translates its SDK's exceptions into the domain tree first; this module then retries only
``TransientProviderError`` (429, 5xx, timeouts, connection errors) and lets permanent errors
(``ProviderError``: other 4xx) through at once. ``sleep`` and ``random`` are injectable so tests assert
the delays that were *requested* instead of measuring wall time.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from lightning.domain.episode import utcnow
from lightning.domain.errors import TransientProviderError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def is_transient_status(status: int) -> bool:
    """429, 408/409/425 and every 5xx may pass; other 4xx never will."""
    return status in TRANSIENT_STATUS or status >= 500


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), if present."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with full jitter; a server's Retry-After wins (capped)."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int, error: TransientProviderError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(ceiling * self.random())

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str,
        on_retry: Callable[[TransientProviderError], T | None] | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds, raises a permanent error, or ``max_attempts`` are spent.

        ``on_retry`` runs before each retry; a non-None answer ends the loop with that value (used to
        look for a job that a failed-looking create actually made)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except TransientProviderError as error:
                if attempt >= self.max_attempts:
                    raise TransientProviderError(
                        f"{what} still failing after {attempt} attempts: {error.message}; try again later",
                        provider=error.provider,
                        status_code=error.status_code,
                        retry_after=error.retry_after,
                    ) from error
                wait = self.delay(attempt, error)
                logger.warning(
                    "%s failed (%s), retry %d/%d in %.2fs",
                    what,
                    error.message,
                    attempt,
                    self.max_attempts - 1,
                    wait,
                )
                self.sleep(wait)
                if on_retry is not None:
                    found = on_retry(error)
                    if found is not None:
                        return found

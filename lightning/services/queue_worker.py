"""Settling queue messages: what a handler's outcome means for the message — one rule for both hosts.

Used by the local loop (``run-loop``) for the ``fine-tune-jobs`` and ``fine-tune-done`` queues; the
Functions host (``lightning/functions/finetune.py``) settles Service Bus messages by the same rule and
logs failures with the same ``log_failed_delivery``. The rule (docs/guarantees.md, "Messages are settled
by one rule"):

* the handler returns → the message is **completed**;
* the handler raises → the message is **abandoned** and delivered again; the queue **dead-letters**
  it once it has failed ``QUEUE_MAX_DELIVERY_COUNT`` deliveries (reason ``MaxDeliveryCountExceeded``).
  That holds for every error, even one that can never succeed as sent (``InvalidInput``, ``NotFound``,
  a body that does not validate): the Python Functions trigger cannot dead-letter a message itself
  (see docs/guarantees.md), so the local host does not either — a poison message costs a few quick
  deliveries on both, and ends in the dead-letter queue on both.

Every failed delivery is logged with the message id and delivery count: errors that can never succeed
at ERROR with the reason, transient ones at WARNING, anything outside the error tree (a bug) with its
traceback — so a programming error is never a silent retry loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from lightning.domain.errors import InvalidInput, LightningError, NotFound, TransientProviderError
from lightning.ports.queue import Queue, ReceivedMessage

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], object]

FailureKind = Literal[
    "permanent",  # can never succeed as sent: InvalidInput, NotFound, a body that does not validate
    "transient",  # may pass: TransientProviderError and the other expected errors (Conflict, ProviderError...)
    "unexpected",  # outside the error tree: a bug; logged with its traceback
]


class Settlement(BaseModel):
    message_id: str
    outcome: Literal[
        "completed",  # handled
        "abandoned",  # will be delivered again (or dead-lettered by the queue after max deliveries)
    ]
    reason: str = ""
    failure: FailureKind | None = None


def failure_kind(exc: BaseException) -> FailureKind:
    if isinstance(exc, InvalidInput | NotFound | ValidationError):
        return "permanent"
    if isinstance(exc, LightningError):
        return "transient"
    return "unexpected"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def log_failed_delivery(
    queue: str, *, message_id: str | None, delivery: int | None, exc: BaseException
) -> FailureKind:
    """Log one failed delivery by the rule above (both hosts call it); returns how it was classified."""
    kind = failure_kind(exc)
    extra = {
        "queue": queue,
        "message_id": message_id,
        "delivery_count": delivery,
        "reason": type(exc).__name__,
    }
    if kind == "permanent":
        logger.error(
            "%s message %s can never succeed as sent (delivery %s; dead-lettered once its deliveries run out): %s",
            queue,
            message_id,
            delivery,
            _one_line(exc),
            extra=extra,
        )
    elif kind == "transient":
        retry_after = exc.retry_after if isinstance(exc, TransientProviderError) else None
        logger.warning(
            "%s message %s failed (delivery %s; delivered again%s): %s",
            queue,
            message_id,
            delivery,
            f", provider asked to wait {retry_after:g}s" if retry_after else "",
            _one_line(exc),
            extra=extra,
        )
    else:
        logger.error(
            "%s message %s hit an unexpected error (delivery %s; delivered again): %s",
            queue,
            message_id,
            delivery,
            _one_line(exc),
            exc_info=exc,
            extra=extra,
        )
    return kind


def settle(queue: Queue, message: ReceivedMessage, *, handle: Handler) -> Settlement:
    """Run ``handle(message.body)`` and settle the message by the rule above."""
    try:
        handle(message.body)
    except Exception as exc:
        kind = log_failed_delivery(
            message.queue, message_id=message.message_id, delivery=message.delivery_count, exc=exc
        )
        queue.abandon(message)
        return Settlement(
            message_id=message.message_id, outcome="abandoned", reason=_one_line(exc), failure=kind
        )
    queue.complete(message)
    return Settlement(message_id=message.message_id, outcome="completed")


def drain(
    queue: Queue, name: str, *, handle: Handler, max_messages: int = 10, visibility_timeout: float = 300.0
) -> list[Settlement]:
    """Receive the messages that are due on ``name`` and settle each."""
    received = queue.receive(name, max_messages=max_messages, visibility_timeout=visibility_timeout)
    return [settle(queue, message, handle=handle) for message in received]

"""Settling queue messages: what a handler's outcome means for the message.

Used by the local loop (``run-loop``) for the ``fine-tune-jobs`` and ``fine-tune-done`` queues.
The rule, same as the Functions host's:

* handler returns → the message is completed;
* the message can never succeed as sent (``InvalidInput``, ``NotFound``, a body that does not
  validate) → dead-lettered at once, with the reason;
* anything else (a provider hiccup, a conflict, a bug) → abandoned, so it is delivered again; the
  queue dead-letters it after its maximum delivery count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from lightning.domain.errors import InvalidInput, NotFound
from lightning.ports.queue import Queue, ReceivedMessage

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], object]


class Settlement(BaseModel):
    message_id: str
    outcome: Literal[
        "completed",  # handled
        "abandoned",  # will be delivered again (or dead-lettered by the queue after max deliveries)
        "dead_lettered",  # can never succeed as sent
    ]
    reason: str = ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def settle(queue: Queue, message: ReceivedMessage, handle: Handler) -> Settlement:
    """Run ``handle(message.body)`` and settle the message by the rule above."""
    try:
        handle(message.body)
    except (InvalidInput, NotFound, ValidationError) as exc:
        reason = _one_line(exc)
        queue.dead_letter(message, reason=type(exc).__name__, description=reason)
        logger.warning("dead-lettered %s: %s", message.message_id, reason, extra={"queue": message.queue})
        return Settlement(message_id=message.message_id, outcome="dead_lettered", reason=reason)
    except Exception as exc:
        reason = _one_line(exc)
        queue.abandon(message)
        logger.warning("abandoned %s: %s", message.message_id, reason, extra={"queue": message.queue})
        return Settlement(message_id=message.message_id, outcome="abandoned", reason=reason)
    queue.complete(message)
    return Settlement(message_id=message.message_id, outcome="completed")


def drain(
    queue: Queue, name: str, handle: Handler, *, max_messages: int = 10, visibility_timeout: float = 300.0
) -> list[Settlement]:
    """Receive the messages that are due on ``name`` and settle each."""
    received = queue.receive(name, max_messages=max_messages, visibility_timeout=visibility_timeout)
    return [settle(queue, message, handle) for message in received]

"""InMemoryQueue: the ``Queue`` port in memory, for service unit tests.

Same semantics as ``SqliteQueue`` and ``ServiceBusQueue`` (the queue contract suite runs on all three):
message-id de-duplication, ``scheduled_at``, visibility timeout, delivery count, dead-letter after
``max_delivery_count`` deliveries, ``Conflict`` when settling with a lost lock.

``now`` is injectable so tests move time instead of sleeping; ``pending(queue)`` lists what is waiting
(due or not), which service tests use to check what was sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lightning.domain.errors import Conflict, InvalidInput
from lightning.ports.queue import DeadLetter, ReceivedMessage

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"


@dataclass
class _Message:
    seq: int
    queue: str
    message_id: str
    body: dict[str, Any]
    enqueued_at: datetime
    visible_at: datetime
    delivery_count: int = 0
    lock_token: str | None = None
    status: str = "active"  # active | done | dead
    reason: str = ""
    description: str = ""


class InMemoryQueue:
    """A thread-safe in-memory queue with the Service Bus peek-lock semantics."""

    def __init__(self, *, max_delivery_count: int = 5, now: Callable[[], datetime] | None = None) -> None:
        self.max_delivery_count = max_delivery_count
        self._now = now or (lambda: datetime.now(UTC))
        self._messages: dict[tuple[str, str], _Message] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def send(
        self,
        queue: str,
        body: Mapping[str, Any],
        *,
        message_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> str:
        message_id = message_id or uuid.uuid4().hex
        now = self._now()
        with self._lock:
            if (queue, message_id) in self._messages:
                return message_id
            self._seq += 1
            visible = max(now, scheduled_at) if scheduled_at is not None else now
            self._messages[(queue, message_id)] = _Message(
                self._seq, queue, message_id, dict(body), now, visible
            )
        return message_id

    def receive(
        self, queue: str, *, max_messages: int = 1, visibility_timeout: float = 30.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1", field="max_messages")
        if visibility_timeout < 0:
            raise InvalidInput("visibility_timeout must be >= 0 seconds", field="visibility_timeout")
        now = self._now()
        out: list[ReceivedMessage] = []
        with self._lock:
            due = sorted(
                (
                    m
                    for m in self._messages.values()
                    if m.queue == queue and m.status == "active" and m.visible_at <= now
                ),
                key=lambda m: (m.visible_at, m.seq),
            )
            for message in due:
                if len(out) >= max_messages:
                    break
                if message.delivery_count >= self.max_delivery_count:
                    self._dead(message, MAX_DELIVERY_COUNT_EXCEEDED, "delivery count exhausted")
                    continue
                message.delivery_count += 1
                message.lock_token = uuid.uuid4().hex
                message.visible_at = now + timedelta(seconds=visibility_timeout)
                out.append(
                    ReceivedMessage(
                        queue=queue,
                        message_id=message.message_id,
                        body=dict(message.body),
                        delivery_count=message.delivery_count,
                        enqueued_at=message.enqueued_at,
                        lock_token=message.lock_token,
                    )
                )
        return out

    def complete(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._locked(message).status = "done"

    def abandon(self, message: ReceivedMessage) -> None:
        with self._lock:
            stored = self._locked(message)
            if stored.delivery_count >= self.max_delivery_count:
                self._dead(stored, MAX_DELIVERY_COUNT_EXCEEDED, "abandoned on its last delivery")
                return
            stored.lock_token = None
            stored.visible_at = self._now()

    def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str = "") -> None:
        with self._lock:
            self._dead(self._locked(message), reason, description)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        with self._lock:
            dead = sorted(
                (m for m in self._messages.values() if m.queue == queue and m.status == "dead"),
                key=lambda m: m.seq,
            )
            return [
                DeadLetter(
                    queue=queue,
                    message_id=m.message_id,
                    body=dict(m.body),
                    reason=m.reason,
                    description=m.description,
                    delivery_count=m.delivery_count,
                )
                for m in dead
            ]

    # --- test helpers ----------------------------------------------------------------------------
    def pending(self, queue: str) -> list[tuple[str, dict[str, Any], datetime]]:
        """``(message_id, body, visible_at)`` of every active message in ``queue``, oldest first."""
        with self._lock:
            return [
                (m.message_id, dict(m.body), m.visible_at)
                for m in sorted(self._messages.values(), key=lambda m: m.seq)
                if m.queue == queue and m.status == "active"
            ]

    def _locked(self, message: ReceivedMessage) -> _Message:
        stored = self._messages.get((message.queue, message.message_id))
        if stored is None or stored.status != "active" or stored.lock_token != message.lock_token:
            raise Conflict(
                f"the lock on message {message.message_id!r} was lost; receive it again",
                ident=message.message_id,
            )
        return stored

    @staticmethod
    def _dead(message: _Message, reason: str, description: str) -> None:
        message.status = "dead"
        message.lock_token = None
        message.reason = reason
        message.description = description

"""Queue: at-least-once messages with scheduling, visibility timeout and dead-lettering.

Implemented by the embedded SQLite queue and by Azure Service Bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field


class ReceivedMessage(BaseModel):
    """A message on loan to one consumer until completed, abandoned or dead-lettered."""

    queue: str
    message_id: str
    body: dict[str, Any]
    delivery_count: int = Field(description="1 on first delivery.")
    enqueued_at: datetime
    lock_token: str = Field(description="Backend handle used to settle the message.")


class DeadLetter(BaseModel):
    queue: str
    message_id: str
    body: dict[str, Any]
    reason: str
    description: str = ""
    delivery_count: int


class Queue(Protocol):
    def send(
        self,
        queue: str,
        body: Mapping[str, Any],
        *,
        message_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> str:
        """Enqueue ``body``; a ``message_id`` already seen in this queue is dropped (de-duplication)."""
        ...

    def receive(
        self, queue: str, *, max_messages: int = 1, visibility_timeout: float = 30.0
    ) -> list[ReceivedMessage]:
        """Messages that are due, hidden from other consumers for ``visibility_timeout`` seconds."""
        ...

    def complete(self, message: ReceivedMessage) -> None: ...

    def abandon(self, message: ReceivedMessage) -> None:
        """Give it back now; after ``max_delivery_count`` deliveries it is dead-lettered."""
        ...

    def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str = "") -> None: ...

    def dead_letters(self, queue: str) -> list[DeadLetter]: ...

"""A local Service Bus broker double at the SDK's client boundary (no Service Bus emulator runs here).

It uses only the SDK's public API, so an SDK upgrade cannot break it from the inside:

What is real: ``ServiceBusQueue`` (the adapter under test), the ``azure.servicebus.ServiceBusMessage`` it
sends (read back through its public ``raw_amqp_message``: data sections, message id, content type,
application properties), the public ``azure.servicebus.amqp.AmqpAnnotatedMessage`` every delivery is
built on (its ``body`` is the generator of data sections a received message has), and the SDK's
``MessageLockLostError`` for a lost lock.

What stands in: ``ServiceBusClient``/sender/receiver (duck-typed: the methods the adapter calls); the
received message (``DeliveredMessage``: the attributes of ``ServiceBusReceivedMessage`` the adapter
reads, which the SDK offers no public way to build — delivery count as the AMQP header carries it,
Service Bus's DeliveryCount − 1, enqueued time, sequence number, lock token, ``DeadLetterReason`` /
``DeadLetterErrorDescription``); and the broker semantics, modelled on a queue with duplicate detection
on, a fixed ``lockDuration`` and a ``maxDeliveryCount`` — Service Bus's documented behaviour, not tested
against the service itself.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus import ServiceBusMessage
from azure.servicebus.amqp import AmqpAnnotatedMessage, AmqpMessageHeader
from azure.servicebus.exceptions import MessageLockLostError

from lightning.adapters.servicebus.queue import ServiceBusQueue

LOCK_DURATION = timedelta(seconds=30)


@dataclass
class _Stored:
    sequence: int
    sections: list[bytes]  # the message's data sections, copied as the SDK would put them on the wire
    message_id: str
    content_type: str | None
    application_properties: dict[Any, Any] | None
    enqueued_at: datetime
    visible_at: datetime
    deliveries: int = 0
    lock: uuid.UUID | None = None
    state: str = "active"  # active | done | dead
    reason: str | None = None
    description: str | None = None


@dataclass
class DeliveredMessage:
    """A received message: what ``ServiceBusReceivedMessage`` offers the adapter, over a public
    ``AmqpAnnotatedMessage``."""

    raw_amqp_message: AmqpAnnotatedMessage
    sequence_number: int
    enqueued_time_utc: datetime
    lock_token: uuid.UUID | None = None
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None

    @property
    def body(self) -> Iterator[bytes]:
        return self.raw_amqp_message.body  # type: ignore[no-any-return]

    @property
    def message_id(self) -> str:
        return str(self.raw_amqp_message.properties.message_id)

    @property
    def content_type(self) -> str | None:
        return self.raw_amqp_message.properties.content_type  # type: ignore[no-any-return]

    @property
    def delivery_count(self) -> int:
        return int(self.raw_amqp_message.header.delivery_count or 0)

    @property
    def application_properties(self) -> dict[Any, Any] | None:
        return self.raw_amqp_message.application_properties  # type: ignore[no-any-return]


def _sections(message: ServiceBusMessage) -> list[bytes]:
    return [part.encode() if isinstance(part, str) else bytes(part) for part in message.raw_amqp_message.body]


class LocalBroker:
    """Queues keyed by name; time from ``now`` so tests move it by hand."""

    def __init__(self, *, max_delivery_count: int, now: Callable[[], datetime]) -> None:
        self.max_delivery_count = max_delivery_count
        self.now = now
        self.messages: dict[str, list[_Stored]] = {}
        self.seen_ids: dict[str, set[str]] = {}
        self.sequence = 0
        self.lock = threading.Lock()

    # sender side
    def enqueue(self, queue: str, message: ServiceBusMessage, at: datetime | None) -> None:
        raw = message.raw_amqp_message
        sections = _sections(message)
        with self.lock:
            seen = self.seen_ids.setdefault(queue, set())
            if message.message_id in seen:  # duplicate detection
                return
            seen.add(message.message_id)
            self.sequence += 1
            now = self.now()
            self.messages.setdefault(queue, []).append(
                _Stored(
                    self.sequence,
                    sections,
                    str(message.message_id),
                    raw.properties.content_type,
                    dict(raw.application_properties or {}) or None,
                    now,
                    max(now, at) if at else now,
                )
            )

    # receiver side
    def _received(self, stored: _Stored, *, peek: bool = False) -> DeliveredMessage:
        raw = AmqpAnnotatedMessage(
            data_body=list(stored.sections),
            header=AmqpMessageHeader(delivery_count=max(stored.deliveries - 1, 0)),
            properties={"message_id": stored.message_id, "content_type": stored.content_type},
            application_properties=dict(stored.application_properties or {}) or None,
            annotations={
                b"x-opt-enqueued-time": int(stored.enqueued_at.timestamp() * 1000),
                b"x-opt-sequence-number": stored.sequence,
            },
        )
        return DeliveredMessage(
            raw,
            sequence_number=stored.sequence,
            enqueued_time_utc=stored.enqueued_at,
            lock_token=None if peek else stored.lock,
            dead_letter_reason=stored.reason,
            dead_letter_error_description=stored.description,
        )

    def receive(self, queue: str, count: int) -> list[DeliveredMessage]:
        now = self.now()
        out = []
        with self.lock:
            for stored in sorted(self.messages.get(queue, []), key=lambda s: (s.visible_at, s.sequence)):
                if len(out) >= count:
                    break
                if stored.state != "active" or stored.visible_at > now:
                    continue
                if stored.deliveries >= self.max_delivery_count:
                    self._dead(stored, "MaxDeliveryCountExceeded", "lock expired on the last delivery")
                    continue
                stored.deliveries += 1
                stored.lock = uuid.uuid4()
                stored.visible_at = now + LOCK_DURATION
                out.append(self._received(stored))
        return out

    def settle(self, queue: str, message: DeliveredMessage, outcome: str, **details: str) -> None:
        with self.lock:
            stored = next((s for s in self.messages.get(queue, []) if s.lock == message.lock_token), None)
            if stored is None or stored.state != "active" or stored.visible_at <= self.now():
                raise MessageLockLostError(message="the lock on the message was lost")
            stored.lock = None
            if outcome == "complete":
                stored.state = "done"
            elif outcome == "abandon":
                if stored.deliveries >= self.max_delivery_count:
                    self._dead(stored, "MaxDeliveryCountExceeded", "abandoned on the last delivery")
                else:
                    stored.visible_at = self.now()
            else:
                self._dead(stored, details["reason"], details.get("error_description", ""))

    @staticmethod
    def _dead(stored: _Stored, reason: str, description: str) -> None:
        stored.state, stored.reason, stored.description, stored.lock = "dead", reason, description, None

    def peek_dead(self, queue: str, count: int, from_sequence: int) -> list[DeliveredMessage]:
        with self.lock:
            dead = [
                s for s in self.messages.get(queue, []) if s.state == "dead" and s.sequence >= from_sequence
            ]
            return [self._received(s, peek=True) for s in sorted(dead, key=lambda s: s.sequence)[:count]]


class _Sender:
    def __init__(self, broker: LocalBroker, queue: str) -> None:
        self.broker, self.queue = broker, queue

    def send_messages(self, message: Any) -> None:
        self.broker.enqueue(self.queue, message, None)

    def schedule_messages(self, message: Any, when: datetime) -> list[int]:
        self.broker.enqueue(self.queue, message, when)
        return [self.broker.sequence]

    def close(self) -> None:
        pass


class _Receiver:
    def __init__(self, broker: LocalBroker, queue: str, sub_queue: Any = None) -> None:
        self.broker, self.queue, self.sub_queue = broker, queue, sub_queue

    def __enter__(self) -> _Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receive_messages(self, max_message_count: int = 1, max_wait_time: float | None = None) -> list[Any]:
        return self.broker.receive(self.queue, max_message_count)

    def complete_message(self, message: Any) -> None:
        self.broker.settle(self.queue, message, "complete")

    def abandon_message(self, message: Any) -> None:
        self.broker.settle(self.queue, message, "abandon")

    def dead_letter_message(self, message: Any, reason: str, error_description: str) -> None:
        self.broker.settle(self.queue, message, "dead", reason=reason, error_description=error_description)

    def peek_messages(self, max_message_count: int = 1, sequence_number: int = 0) -> list[Any]:
        assert self.sub_queue is not None, "the adapter peeks only the dead-letter sub-queue"
        return self.broker.peek_dead(self.queue, max_message_count, sequence_number)

    def close(self) -> None:
        pass


class LocalServiceBusClient:
    """The ``ServiceBusClient`` methods the adapter uses, on a ``LocalBroker``."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker

    def get_queue_sender(self, queue_name: str) -> _Sender:
        return _Sender(self.broker, queue_name)

    def get_queue_receiver(
        self, queue_name: str, receive_mode: Any = None, sub_queue: Any = None
    ) -> _Receiver:
        return _Receiver(self.broker, queue_name, sub_queue)

    def close(self) -> None:
        pass


def servicebus_queue_on_local_broker(
    *, max_delivery_count: int, now: Callable[[], datetime] | None = None
) -> tuple[ServiceBusQueue, Callable[[], None]]:
    broker = LocalBroker(max_delivery_count=max_delivery_count, now=now or (lambda: datetime.now(UTC)))
    queue = ServiceBusQueue(LocalServiceBusClient(broker))
    return queue, queue.close

"""A local Service Bus broker stand-in at the SDK's client boundary (no Service Bus emulator runs here).

What is real: ``ServiceBusQueue`` (the adapter under test) and every message object that crosses the
boundary — the adapter's ``azure.servicebus.ServiceBusMessage`` is turned into the AMQP message the SDK
would send (``PyamqpTransport.to_outgoing_amqp_message``) and encoded to bytes with the SDK's own AMQP
encoder; what comes back is decoded by the SDK's AMQP decoder, given the header and annotations Service
Bus adds (delivery-count = DeliveryCount − 1, enqueued time, sequence number, lock token,
``DeadLetterReason``/``DeadLetterErrorDescription``), and wrapped in a real
``azure.servicebus.ServiceBusReceivedMessage``; a lost lock raises the SDK's ``MessageLockLostError``.

What stands in: ``ServiceBusClient``/sender/receiver (duck-typed: the methods the adapter calls) and the
broker semantics, modelled on a queue with duplicate detection on, a fixed ``lockDuration`` and a
``maxDeliveryCount`` — Service Bus's documented behaviour, not tested against the service itself.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus._pyamqp._decode import decode_payload
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from azure.servicebus.exceptions import MessageLockLostError

from lightning.adapters.servicebus.queue import ServiceBusQueue

LOCK_DURATION = timedelta(seconds=30)


@dataclass
class _Stored:
    sequence: int
    wire: bytes  # the AMQP-encoded message as the SDK sent it
    message_id: str
    enqueued_at: datetime
    visible_at: datetime
    deliveries: int = 0
    lock: uuid.UUID | None = None
    state: str = "active"  # active | done | dead
    reason: str | None = None
    description: str | None = None


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
    def enqueue(self, queue: str, message: Any, at: datetime | None) -> None:
        outgoing = PyamqpTransport.to_outgoing_amqp_message(message.raw_amqp_message)
        buffer = bytearray()
        encode_payload(buffer, outgoing)
        with self.lock:
            seen = self.seen_ids.setdefault(queue, set())
            if message.message_id in seen:  # duplicate detection
                return
            seen.add(message.message_id)
            self.sequence += 1
            now = self.now()
            self.messages.setdefault(queue, []).append(
                _Stored(self.sequence, bytes(buffer), message.message_id, now, max(now, at) if at else now)
            )

    # receiver side
    def _received(self, receiver: Any, stored: _Stored, *, peek: bool = False) -> ServiceBusReceivedMessage:
        wire = decode_payload(memoryview(stored.wire))
        properties: dict[bytes, Any] = dict(wire.application_properties or {})
        if stored.reason is not None:
            properties[b"DeadLetterReason"] = stored.reason.encode()
            properties[b"DeadLetterErrorDescription"] = (stored.description or "").encode()
        wire = wire._replace(
            header=Header(delivery_count=max(stored.deliveries - 1, 0)),
            message_annotations={
                b"x-opt-enqueued-time": int(stored.enqueued_at.timestamp() * 1000),
                b"x-opt-sequence-number": stored.sequence,
            },
            application_properties=properties,
        )
        kwargs: dict[str, Any] = {"receiver": receiver}
        if peek:
            kwargs["is_peeked_message"] = True
        else:
            kwargs["lock_token"] = stored.lock
        return ServiceBusReceivedMessage(wire, **kwargs)

    def receive(self, receiver: Any, queue: str, count: int) -> list[ServiceBusReceivedMessage]:
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
                out.append(self._received(receiver, stored))
        return out

    def settle(self, queue: str, message: ServiceBusReceivedMessage, outcome: str, **details: str) -> None:
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

    def peek_dead(
        self, receiver: Any, queue: str, count: int, from_sequence: int
    ) -> list[ServiceBusReceivedMessage]:
        with self.lock:
            dead = [
                s for s in self.messages.get(queue, []) if s.state == "dead" and s.sequence >= from_sequence
            ]
            return [
                self._received(receiver, s, peek=True) for s in sorted(dead, key=lambda s: s.sequence)[:count]
            ]


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
        return self.broker.receive(self, self.queue, max_message_count)

    def complete_message(self, message: Any) -> None:
        self.broker.settle(self.queue, message, "complete")

    def abandon_message(self, message: Any) -> None:
        self.broker.settle(self.queue, message, "abandon")

    def dead_letter_message(self, message: Any, reason: str, error_description: str) -> None:
        self.broker.settle(self.queue, message, "dead", reason=reason, error_description=error_description)

    def peek_messages(self, max_message_count: int = 1, sequence_number: int = 0) -> list[Any]:
        assert self.sub_queue is not None, "the adapter peeks only the dead-letter sub-queue"
        return self.broker.peek_dead(self, self.queue, max_message_count, sequence_number)

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

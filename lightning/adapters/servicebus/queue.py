"""ServiceBusQueue: the ``Queue`` port on Azure Service Bus (``fine-tune-jobs``, ``fine-tune-done``).

Built by the Container when ``LIGHTNING_QUEUE=servicebus``: ``ServiceBusClient(SERVICEBUS_NAMESPACE,
DefaultAzureCredential())`` — Entra ID, the identity needs *Azure Service Bus Data Sender* and *Data
Receiver* on the namespace. ``SERVICEBUS_CONNECTION_STRING`` is accepted only for the Service Bus
emulator. The Functions host does not receive through this class (its triggers do); the services send
follow-up messages through it, and ``run-loop --queue servicebus`` receives with it.

How the port maps onto Service Bus:

* ``send``: a JSON body (``content_type`` ``application/json``) with ``message_id``; with ``scheduled_at``
  it uses ``schedule_messages`` (the message stays invisible until then; a past time enqueues at once).
  **De-duplication needs the queue's duplicate detection** (``requiresDuplicateDetection: true`` and a
  ``duplicateDetectionHistoryTimeWindow``, e.g. ``P1D``): Service Bus then drops a second message with the
  same id inside the window. The Bicep template must set both on ``fine-tune-jobs`` and ``fine-tune-done``;
  without them duplicates are delivered (the services stay correct — every handler is idempotent — but
  do the work twice).
* ``receive``: peek-lock. The lock lasts the queue's ``lockDuration`` (Bicep: ``PT5M``, the maximum);
  ``visibility_timeout`` cannot shorten or lengthen it per call on Service Bus and is ignored.
  ``delivery_count`` is 1 on the first delivery: the AMQP header carries Service Bus's DeliveryCount − 1.
* ``complete`` / ``abandon`` / ``dead_letter(reason, description)``: settled on the receiver that
  received the message (Service Bus requires the same link). A lost lock (it expired, or the message was
  settled already) is ``Conflict``. Service Bus itself dead-letters a message after the queue's
  ``maxDeliveryCount`` (Bicep: ``QUEUE_MAX_DELIVERY_COUNT``) with reason ``MaxDeliveryCountExceeded``.
* ``dead_letters``: peeks the ``$DeadLetterQueue`` sub-queue (non-destructive).

Limit of what the tests can prove here: no Service Bus emulator runs locally (the official one is a
container image), so the tests check the mapping against the SDK's real message classes and the settle
bookkeeping; the wire behaviour above is Service Bus's documented behaviour, not something tested here.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightning.domain.episode import as_utc
from lightning.domain.errors import ConfigurationError, Conflict, InvalidInput, TransientProviderError
from lightning.ports.queue import DeadLetter, ReceivedMessage

CONTENT_TYPE = "application/json"


def encode_body(body: Mapping[str, Any]) -> str:
    return json.dumps(dict(body), separators=(",", ":"), ensure_ascii=False, default=str)


def decode_body(message: Any) -> dict[str, Any]:
    """The JSON object in a received message's body (data sections joined, or a value/str body)."""
    raw = message.body
    if isinstance(raw, bytes | bytearray):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw.encode()
    elif isinstance(raw, dict):
        return dict(raw)
    else:  # a generator of data sections
        data = b"".join(bytes(part) for part in raw)
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"_raw": data.decode("utf-8", errors="replace")}
    return value if isinstance(value, dict) else {"_value": value}


def to_service_bus_message(body: Mapping[str, Any], *, message_id: str) -> Any:
    """The ``azure.servicebus.ServiceBusMessage`` for ``body``."""
    from azure.servicebus import ServiceBusMessage

    return ServiceBusMessage(encode_body(body), message_id=message_id, content_type=CONTENT_TYPE)


def _delivery_count(message: Any) -> int:
    # The AMQP header's delivery-count is Service Bus's DeliveryCount - 1 (0 on the first delivery).
    return int(message.delivery_count or 0) + 1


def _enqueued_at(message: Any) -> datetime:
    value = message.enqueued_time_utc
    return as_utc(value) if value is not None else datetime.now(UTC)


def to_received(queue: str, message: Any) -> ReceivedMessage:
    """Our ``ReceivedMessage`` for an ``azure.servicebus.ServiceBusReceivedMessage``."""
    return ReceivedMessage(
        queue=queue,
        message_id=str(message.message_id),
        body=decode_body(message),
        delivery_count=_delivery_count(message),
        enqueued_at=_enqueued_at(message),
        lock_token=str(message.lock_token),
    )


def to_dead_letter(queue: str, message: Any) -> DeadLetter:
    return DeadLetter(
        queue=queue,
        message_id=str(message.message_id),
        body=decode_body(message),
        reason=message.dead_letter_reason or "",
        description=message.dead_letter_error_description or "",
        delivery_count=_delivery_count(message),
    )


class ServiceBusQueue:
    """The ``Queue`` port over one Service Bus namespace (one sender and one receiver per queue)."""

    def __init__(self, client: Any, *, receive_wait_seconds: float = 1.0) -> None:
        self._client = client
        self._wait = receive_wait_seconds
        self._senders: dict[str, Any] = {}
        self._receivers: dict[str, Any] = {}
        # lock token → (receiver, SDK message): settling needs the receiver that received it.
        self._leased: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def on_namespace(cls, namespace: str, *, credential: Any = None) -> ServiceBusQueue:
        """Entra ID on ``namespace`` (``myns.servicebus.windows.net``); ``DefaultAzureCredential`` unless given."""
        from azure.servicebus import ServiceBusClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(ServiceBusClient(namespace, credential))

    @classmethod
    def from_connection_string(cls, connection_string: str) -> ServiceBusQueue:
        """A connection string: the Service Bus emulator only (Azure uses Entra ID)."""
        from azure.servicebus import ServiceBusClient

        return cls(ServiceBusClient.from_connection_string(connection_string))

    def close(self) -> None:
        with self._lock:
            for handler in [*self._senders.values(), *self._receivers.values()]:
                handler.close()
            self._senders.clear()
            self._receivers.clear()
            self._leased.clear()
        self._client.close()

    # --- clients per queue -----------------------------------------------------------------------
    def _sender(self, queue: str) -> Any:
        with self._lock:
            if queue not in self._senders:
                self._senders[queue] = self._client.get_queue_sender(queue)
            return self._senders[queue]

    def _receiver(self, queue: str) -> Any:
        from azure.servicebus import ServiceBusReceiveMode

        with self._lock:
            if queue not in self._receivers:
                self._receivers[queue] = self._client.get_queue_receiver(
                    queue, receive_mode=ServiceBusReceiveMode.PEEK_LOCK
                )
            return self._receivers[queue]

    # --- the port --------------------------------------------------------------------------------
    def send(
        self,
        queue: str,
        body: Mapping[str, Any],
        *,
        message_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> str:
        message_id = message_id or uuid.uuid4().hex
        message = to_service_bus_message(body, message_id=message_id)
        with _ServiceBusErrors(queue):
            sender = self._sender(queue)
            if scheduled_at is not None:  # a time already past enqueues at once
                sender.schedule_messages(message, as_utc(scheduled_at))
            else:
                sender.send_messages(message)
        return message_id

    def receive(
        self, queue: str, *, max_messages: int = 1, visibility_timeout: float = 30.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1", field="max_messages")
        with _ServiceBusErrors(queue):
            receiver = self._receiver(queue)
            messages = receiver.receive_messages(max_message_count=max_messages, max_wait_time=self._wait)
        received = []
        for message in messages:
            mapped = to_received(queue, message)
            with self._lock:
                self._leased[mapped.lock_token] = (receiver, message)
            received.append(mapped)
        return received

    def _take(self, message: ReceivedMessage) -> tuple[Any, Any]:
        with self._lock:
            leased = self._leased.pop(message.lock_token, None)
        if leased is None:
            raise Conflict(
                f"message {message.message_id!r} in {message.queue!r} is not leased by this client (already "
                "settled, or received elsewhere); receive it again",
                ident=message.message_id,
            )
        return leased

    def complete(self, message: ReceivedMessage) -> None:
        receiver, sdk_message = self._take(message)
        with _ServiceBusErrors(message.queue, message.message_id):
            receiver.complete_message(sdk_message)

    def abandon(self, message: ReceivedMessage) -> None:
        receiver, sdk_message = self._take(message)
        with _ServiceBusErrors(message.queue, message.message_id):
            receiver.abandon_message(sdk_message)

    def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str = "") -> None:
        receiver, sdk_message = self._take(message)
        with _ServiceBusErrors(message.queue, message.message_id):
            receiver.dead_letter_message(sdk_message, reason=reason, error_description=description)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        from azure.servicebus import ServiceBusSubQueue

        found: list[DeadLetter] = []
        with (
            _ServiceBusErrors(queue),
            self._client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver,
        ):
            sequence = 0
            while True:
                batch = receiver.peek_messages(max_message_count=100, sequence_number=sequence)
                if not batch:
                    break
                found.extend(to_dead_letter(queue, m) for m in batch)
                sequence = int(batch[-1].sequence_number) + 1
        return found


class _ServiceBusErrors:
    """Service Bus SDK errors → the domain's: lost locks are ``Conflict``, the rest transient."""

    def __init__(self, queue: str, message_id: str | None = None) -> None:
        self.queue = queue
        self.message_id = message_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        from azure.servicebus.exceptions import (
            MessageAlreadySettled,
            MessageLockLostError,
            ServiceBusAuthenticationError,
            ServiceBusAuthorizationError,
            ServiceBusError,
        )

        if isinstance(exc, MessageLockLostError | MessageAlreadySettled):
            raise Conflict(
                f"the lock on message {self.message_id!r} in {self.queue!r} was lost; receive it again",
                ident=self.message_id,
            ) from exc
        if isinstance(exc, ServiceBusAuthenticationError | ServiceBusAuthorizationError):
            raise ConfigurationError(
                f"Service Bus refused access to {self.queue!r}: give this identity 'Azure Service Bus Data "
                f"Sender' and 'Data Receiver' on the namespace ({exc})"
            ) from exc
        if isinstance(exc, ServiceBusError):
            raise TransientProviderError(
                f"Service Bus failed on {self.queue!r}: {exc}", provider="servicebus"
            ) from exc

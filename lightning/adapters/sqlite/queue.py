"""SqliteQueue: the embedded at-least-once queue (component ``queue``), Service Bus semantics in one file.

Used by the local host (``run-loop``) and by tests; ``LIGHTNING_QUEUE=servicebus`` swaps in
``lightning.adapters.servicebus.queue.ServiceBusQueue`` with the same behaviour:

- ``send`` de-duplicates by ``message_id`` per queue (Service Bus duplicate detection) for
  ``dedup_window`` (7 days, the Service Bus maximum); ``scheduled_at`` hides a message until then.
- ``receive`` leases due messages for ``visibility_timeout`` seconds (the peek-lock), counting deliveries.
- ``complete`` deletes, ``abandon`` gives back at once; a message delivered ``max_delivery_count`` times
  that is abandoned or whose lease expires is dead-lettered (reason ``MaxDeliveryCountExceeded``).
- ``dead_letter`` moves a message aside with a reason; ``dead_letters`` lists them.

Settling with a lock token that is no longer current (the lease expired and another consumer took the
message, or it was already settled) raises ``Conflict`` — Service Bus's ``MessageLockLostError``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.domain.episode import as_utc
from lightning.domain.errors import Conflict, InvalidInput
from lightning.ports.queue import DeadLetter, ReceivedMessage

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
"""Dead-letter reason when a message ran out of deliveries (the Service Bus wording)."""

_MIGRATIONS = [
    """
    CREATE TABLE queue_messages (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        queue           TEXT    NOT NULL,
        message_id      TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        enqueued_at     REAL    NOT NULL,
        visible_at      REAL    NOT NULL,
        delivery_count  INTEGER NOT NULL DEFAULT 0,
        lock_token      TEXT,
        -- active: waiting or leased; done: completed (kept for de-duplication); dead: dead-lettered
        status          TEXT    NOT NULL DEFAULT 'active',
        dead_reason     TEXT,
        dead_description TEXT,
        settled_at      REAL,
        UNIQUE (queue, message_id)
    );
    CREATE INDEX queue_messages_due ON queue_messages (queue, status, visible_at, seq);
    """,
]


def _epoch(value: datetime) -> float:
    return as_utc(value).timestamp()


class SqliteQueue:
    """The ``Queue`` port on one SQLite file (the embedded one, beside the local loop's cursors), thread- and
    process-safe."""

    def __init__(
        self,
        db: SqliteDatabase,
        *,
        max_delivery_count: int = 5,
        dedup_window: timedelta = timedelta(days=7),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if max_delivery_count < 1:
            raise InvalidInput("max_delivery_count must be at least 1", field="max_delivery_count")
        self._db = db
        self._max_delivery_count = max_delivery_count
        self._dedup_window = dedup_window
        self._now = now or (lambda: datetime.now(UTC))
        db.migrate("queue", _MIGRATIONS)

    # --- sending ---------------------------------------------------------------------------------
    def send(
        self,
        queue: str,
        body: Mapping[str, Any],
        *,
        message_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> str:
        message_id = message_id or uuid.uuid4().hex
        now = _epoch(self._now())
        visible_at = max(now, _epoch(scheduled_at)) if scheduled_at is not None else now
        payload = json.dumps(dict(body), separators=(",", ":"), default=str)
        with self._db.transaction() as tx:
            # Forget settled messages older than the de-duplication window, as Service Bus does.
            tx.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND status = 'done' AND settled_at < ?",
                (queue, now - self._dedup_window.total_seconds()),
            )
            tx.execute(
                "INSERT INTO queue_messages (queue, message_id, body, enqueued_at, visible_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue, message_id) DO NOTHING",
                (queue, message_id, payload, now, visible_at),
            )
        return message_id

    # --- receiving -------------------------------------------------------------------------------
    def receive(
        self, queue: str, *, max_messages: int = 1, visibility_timeout: float = 30.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1", field="max_messages")
        if visibility_timeout < 0:
            raise InvalidInput("visibility_timeout must be >= 0 seconds", field="visibility_timeout")
        now = _epoch(self._now())
        received: list[ReceivedMessage] = []
        with self._db.transaction() as tx:
            while len(received) < max_messages:
                rows = tx.execute(
                    "SELECT seq, message_id, body, enqueued_at, delivery_count FROM queue_messages "
                    "WHERE queue = ? AND status = 'active' AND visible_at <= ? "
                    "ORDER BY visible_at, seq LIMIT ?",
                    (queue, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    if row["delivery_count"] >= self._max_delivery_count:
                        # Its last lease expired unsettled: out of deliveries.
                        self._dead_letter_row(
                            tx,
                            row["seq"],
                            MAX_DELIVERY_COUNT_EXCEEDED,
                            f"delivered {row['delivery_count']} times without being completed",
                            now,
                        )
                        continue
                    token = uuid.uuid4().hex
                    count = row["delivery_count"] + 1
                    tx.execute(
                        "UPDATE queue_messages SET delivery_count = ?, lock_token = ?, visible_at = ? "
                        "WHERE seq = ?",
                        (count, token, now + visibility_timeout, row["seq"]),
                    )
                    received.append(
                        ReceivedMessage(
                            queue=queue,
                            message_id=row["message_id"],
                            body=json.loads(row["body"]),
                            delivery_count=count,
                            enqueued_at=datetime.fromtimestamp(row["enqueued_at"], UTC),
                            lock_token=token,
                        )
                    )
        return received

    # --- settling --------------------------------------------------------------------------------
    def complete(self, message: ReceivedMessage) -> None:
        with self._db.transaction() as tx:
            seq = self._locked_seq(tx, message)
            tx.execute(
                "UPDATE queue_messages SET status = 'done', lock_token = NULL, settled_at = ? WHERE seq = ?",
                (_epoch(self._now()), seq),
            )

    def abandon(self, message: ReceivedMessage) -> None:
        now = _epoch(self._now())
        with self._db.transaction() as tx:
            seq = self._locked_seq(tx, message)
            count = tx.execute("SELECT delivery_count FROM queue_messages WHERE seq = ?", (seq,)).fetchone()[
                0
            ]
            if count >= self._max_delivery_count:
                self._dead_letter_row(
                    tx, seq, MAX_DELIVERY_COUNT_EXCEEDED, f"abandoned after {count} deliveries", now
                )
                return
            tx.execute(
                "UPDATE queue_messages SET lock_token = NULL, visible_at = ? WHERE seq = ?", (now, seq)
            )

    def dead_letter(self, message: ReceivedMessage, *, reason: str, description: str = "") -> None:
        with self._db.transaction() as tx:
            seq = self._locked_seq(tx, message)
            self._dead_letter_row(tx, seq, reason, description, _epoch(self._now()))

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        rows = (
            self._db.connection()
            .execute(
                "SELECT message_id, body, dead_reason, dead_description, delivery_count FROM queue_messages "
                "WHERE queue = ? AND status = 'dead' ORDER BY settled_at, seq",
                (queue,),
            )
            .fetchall()
        )
        return [
            DeadLetter(
                queue=queue,
                message_id=row["message_id"],
                body=json.loads(row["body"]),
                reason=row["dead_reason"] or "",
                description=row["dead_description"] or "",
                delivery_count=row["delivery_count"],
            )
            for row in rows
        ]

    # --- helpers ---------------------------------------------------------------------------------
    def _locked_seq(self, tx: Any, message: ReceivedMessage) -> int:
        row = tx.execute(
            "SELECT seq FROM queue_messages WHERE queue = ? AND message_id = ? AND status = 'active' "
            "AND lock_token = ?",
            (message.queue, message.message_id, message.lock_token),
        ).fetchone()
        if row is None:
            raise Conflict(
                f"the lock on message {message.message_id!r} in {message.queue!r} was lost (its visibility "
                "timeout passed and it was redelivered, or it was already settled); receive it again",
                ident=message.message_id,
            )
        return int(row[0])

    @staticmethod
    def _dead_letter_row(tx: Any, seq: int, reason: str, description: str, now: float) -> None:
        tx.execute(
            "UPDATE queue_messages SET status = 'dead', lock_token = NULL, dead_reason = ?, "
            "dead_description = ?, settled_at = ? WHERE seq = ?",
            (reason, description, now, seq),
        )

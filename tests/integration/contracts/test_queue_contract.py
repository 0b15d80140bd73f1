"""The Queue contract: every implementation (in-memory fake, SQLite, Service Bus) behaves the same.

Time is a controllable clock shared by the queue under test, so visibility timeouts and scheduled
messages are tested by moving time, never by sleeping.

``servicebus`` runs ``ServiceBusQueue`` over the broker double in ``tests.integration.servicebus.broker``
(the SDK's public message classes, the network half and broker stand in: no Service Bus emulator can run
here); see that module for exactly what is real and what stands in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.queue import SqliteQueue
from lightning.domain.errors import Conflict
from lightning.ports.queue import Queue
from tests.fakes.queue import InMemoryQueue

Q = "fine-tune-jobs"


class FakeNow:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.value = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


@pytest.fixture
def now() -> FakeNow:
    return FakeNow()


MakeQueue = Callable[..., Queue]

LONGEST_LOCK = 30
"""Seconds: the longest lease any backend gives. Service Bus ignores ``visibility_timeout`` (the queue's
``lockDuration`` decides; the broker double's is 30 s), so a test that lets a lease expire waits this long."""


@pytest.fixture(params=["memory", "sqlite", pytest.param("servicebus", marks=pytest.mark.servicebus)])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path, now: FakeNow) -> Iterator[MakeQueue]:
    closers: list[Callable[[], None]] = []

    def make(max_delivery_count: int = 5) -> Queue:
        if request.param == "memory":
            return InMemoryQueue(max_delivery_count=max_delivery_count, now=now)
        if request.param == "sqlite":
            db = SqliteDatabase(tmp_path / "queue.db")
            closers.append(db.close)
            return SqliteQueue(db, max_delivery_count=max_delivery_count, now=now)
        from tests.integration.servicebus.broker import servicebus_queue_on_local_broker

        queue, close = servicebus_queue_on_local_broker(max_delivery_count=max_delivery_count, now=now)
        closers.append(close)
        return queue

    yield make
    for close in closers:
        close()


@pytest.fixture
def queue(make_queue: MakeQueue) -> Queue:
    return make_queue()


def _bodies(messages: list[Any]) -> list[dict[str, Any]]:
    return [m.body for m in messages]


def test_send_receive_complete_round_trip(queue: Queue) -> None:
    message_id = queue.send(Q, {"kind": "start", "agent_id": "autonomous-agent", "n": 1})
    [message] = queue.receive(Q)
    assert message.message_id == message_id
    assert message.queue == Q
    assert message.body == {"kind": "start", "agent_id": "autonomous-agent", "n": 1}
    assert message.delivery_count == 1
    assert message.lock_token
    queue.complete(message)
    assert queue.receive(Q) == []
    assert queue.dead_letters(Q) == []


def test_generated_message_ids_are_unique(queue: Queue) -> None:
    ids = {queue.send(Q, {"n": i}) for i in range(5)}
    assert len(ids) == 5
    assert sorted(m.body["n"] for m in queue.receive(Q, max_messages=10)) == [0, 1, 2, 3, 4]


def test_duplicate_message_id_is_dropped_even_after_completion(queue: Queue) -> None:
    assert queue.send(Q, {"n": 1}, message_id="start:ds-1") == "start:ds-1"
    assert queue.send(Q, {"n": 2}, message_id="start:ds-1") == "start:ds-1"
    [message] = queue.receive(Q, max_messages=10)
    assert message.body == {"n": 1}
    queue.complete(message)
    queue.send(Q, {"n": 3}, message_id="start:ds-1")
    assert queue.receive(Q, max_messages=10) == []


def test_same_message_id_in_another_queue_is_not_a_duplicate(queue: Queue) -> None:
    queue.send(Q, {"q": "jobs"}, message_id="m-1")
    queue.send("fine-tune-done", {"q": "done"}, message_id="m-1")
    assert _bodies(queue.receive(Q, max_messages=5)) == [{"q": "jobs"}]
    assert _bodies(queue.receive("fine-tune-done", max_messages=5)) == [{"q": "done"}]


def test_receive_is_oldest_first_and_honours_max_messages(queue: Queue, now: FakeNow) -> None:
    for i in range(4):
        queue.send(Q, {"n": i})
        now.advance(1)
    first = queue.receive(Q, max_messages=3)
    assert [m.body["n"] for m in first] == [0, 1, 2]
    assert [m.body["n"] for m in queue.receive(Q, max_messages=3)] == [3]


def test_scheduled_message_waits_until_due(queue: Queue, now: FakeNow) -> None:
    queue.send(Q, {"kind": "poll"}, message_id="poll-1", scheduled_at=now() + timedelta(seconds=60))
    assert queue.receive(Q) == []
    now.advance(59)
    assert queue.receive(Q) == []
    now.advance(2)
    [message] = queue.receive(Q)
    assert message.body == {"kind": "poll"}
    assert message.delivery_count == 1


def test_scheduled_message_is_deduplicated_too(queue: Queue, now: FakeNow) -> None:
    due = now() + timedelta(seconds=30)
    queue.send(Q, {"attempt": 1}, message_id="poll:run-1:1", scheduled_at=due)
    queue.send(Q, {"attempt": 1}, message_id="poll:run-1:1", scheduled_at=due)
    now.advance(31)
    assert len(queue.receive(Q, max_messages=5)) == 1


def test_leased_message_is_hidden_then_redelivered_after_visibility_timeout(
    queue: Queue, now: FakeNow
) -> None:
    queue.send(Q, {"n": 1})
    [first] = queue.receive(Q, visibility_timeout=30)
    assert queue.receive(Q) == []
    now.advance(31)
    [second] = queue.receive(Q, visibility_timeout=30)
    assert second.message_id == first.message_id
    assert second.delivery_count == 2
    assert second.lock_token != first.lock_token
    with pytest.raises(Conflict):
        queue.complete(first)  # its lock was lost to the redelivery
    queue.complete(second)
    assert queue.receive(Q) == []


def test_abandon_gives_the_message_back_at_once(queue: Queue) -> None:
    queue.send(Q, {"n": 1})
    [first] = queue.receive(Q, visibility_timeout=300)
    queue.abandon(first)
    [again] = queue.receive(Q)
    assert again.delivery_count == 2
    assert again.body == {"n": 1}


def test_dead_lettered_after_max_delivery_count_abandons(make_queue: MakeQueue) -> None:
    queue = make_queue(max_delivery_count=3)
    queue.send(Q, {"n": 1}, message_id="poison")
    for expected in (1, 2, 3):
        [message] = queue.receive(Q)
        assert message.delivery_count == expected
        queue.abandon(message)
    assert queue.receive(Q) == []
    [dead] = queue.dead_letters(Q)
    assert dead.message_id == "poison"
    assert dead.body == {"n": 1}
    assert dead.reason == "MaxDeliveryCountExceeded"
    assert dead.delivery_count == 3


def test_dead_lettered_when_the_last_lease_expires(make_queue: MakeQueue, now: FakeNow) -> None:
    queue = make_queue(max_delivery_count=2)
    queue.send(Q, {"n": 1})
    queue.receive(Q, visibility_timeout=10)
    now.advance(LONGEST_LOCK + 1)
    queue.receive(Q, visibility_timeout=10)
    now.advance(LONGEST_LOCK + 1)
    assert queue.receive(Q) == []
    [dead] = queue.dead_letters(Q)
    assert dead.reason == "MaxDeliveryCountExceeded"


def test_explicit_dead_letter_keeps_reason_and_description(queue: Queue) -> None:
    queue.send(Q, {"kind": "nonsense"}, message_id="bad-1")
    [message] = queue.receive(Q)
    queue.dead_letter(message, reason="InvalidMessage", description="kind must be start or poll")
    assert queue.receive(Q) == []
    [dead] = queue.dead_letters(Q)
    assert (dead.message_id, dead.reason, dead.description) == (
        "bad-1",
        "InvalidMessage",
        "kind must be start or poll",
    )
    assert dead.body == {"kind": "nonsense"}
    assert dead.delivery_count == 1
    assert queue.dead_letters("fine-tune-done") == []


def test_settling_twice_is_a_conflict(queue: Queue) -> None:
    queue.send(Q, {"n": 1})
    [message] = queue.receive(Q)
    queue.complete(message)
    with pytest.raises(Conflict):
        queue.complete(message)
    with pytest.raises(Conflict):
        queue.abandon(message)


def test_body_round_trips_nested_json(queue: Queue) -> None:
    body = {
        "kind": "start",
        "hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 0.1, "batch_size": None},
        "tags": ["a", "ü", "🙂"],
        "ok": True,
    }
    queue.send(Q, body)
    [message] = queue.receive(Q)
    assert message.body == body

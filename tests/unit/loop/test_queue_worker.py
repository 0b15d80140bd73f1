"""The one settlement rule (docs/guarantees.md): completed when handled; otherwise abandoned and delivered
again until the queue dead-letters it after its maximum delivery count — whatever the error."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from lightning.domain.errors import InvalidInput, NotFound, TransientProviderError
from lightning.services.queue_worker import drain
from tests.fakes.queue import InMemoryQueue


class Body(BaseModel):
    run_id: str


def _queue_with(body: dict[str, Any]) -> InMemoryQueue:
    queue = InMemoryQueue(max_delivery_count=3)
    queue.send("q", body, message_id="m1")
    return queue


def _deliveries(queue: InMemoryQueue, handle: Any) -> list[str]:
    return [s.outcome for _ in range(4) for s in drain(queue, "q", handle=handle, visibility_timeout=0)]


def test_handled_message_is_completed() -> None:
    queue = _queue_with({"run_id": "r1"})
    seen: list[str] = []
    [settlement] = drain(queue, "q", handle=lambda body: seen.append(Body.model_validate(body).run_id))
    assert settlement.outcome == "completed"
    assert seen == ["r1"]
    assert queue.receive("q") == []
    assert queue.dead_letters("q") == []


@pytest.mark.parametrize(
    ("error", "kind", "level"),
    [
        (InvalidInput("bad body"), "permanent", logging.ERROR),
        (NotFound("training run", "r9"), "permanent", logging.ERROR),
        (TransientProviderError("429 from provider", retry_after=1), "transient", logging.WARNING),
        (KeyError("run_id"), "unexpected", logging.ERROR),
    ],
)
def test_every_failure_is_redelivered_then_dead_lettered_by_the_queue(
    error: Exception, kind: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue_with({"run_id": "r1"})

    def handle(body: dict[str, Any]) -> None:
        raise error

    with caplog.at_level(logging.WARNING, logger="lightning.services.queue_worker"):
        first = drain(queue, "q", handle=handle, visibility_timeout=0)
        outcomes = [s.outcome for s in first] + _deliveries(queue, handle)
    assert outcomes == ["abandoned", "abandoned", "abandoned"]  # max_delivery_count=3, then nothing
    assert first[0].failure == kind
    [dead] = queue.dead_letters("q")
    assert (dead.reason, dead.delivery_count) == ("MaxDeliveryCountExceeded", 3)
    records = [r for r in caplog.records if r.name == "lightning.services.queue_worker"]
    assert [r.levelno for r in records] == [level] * 3
    assert all(r.message_id == "m1" for r in records)  # type: ignore[attr-defined]
    assert [r.delivery_count for r in records] == [1, 2, 3]  # type: ignore[attr-defined]
    # A bug (outside the error tree) carries its traceback; expected errors do not.
    assert all((r.exc_info is not None) == (kind == "unexpected") for r in records)


def test_a_body_that_does_not_validate_follows_the_same_rule() -> None:
    queue = _queue_with({"wrong": 1})
    outcomes = _deliveries(queue, lambda body: Body.model_validate(body))
    assert outcomes == ["abandoned"] * 3
    assert queue.dead_letters("q")[0].reason == "MaxDeliveryCountExceeded"


def test_a_message_that_succeeds_on_a_later_delivery_is_completed_not_dead_lettered() -> None:
    queue = _queue_with({"run_id": "r1"})
    calls: list[int] = []

    def handle(body: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise TransientProviderError("503")

    assert _deliveries(queue, handle) == ["abandoned", "abandoned", "completed"]
    assert queue.dead_letters("q") == []

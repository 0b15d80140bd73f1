"""Settlement rule: completed, dead-lettered at once for hopeless messages, abandoned otherwise."""

from __future__ import annotations

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


def test_handled_message_is_completed() -> None:
    queue = _queue_with({"run_id": "r1"})
    seen: list[str] = []
    [settlement] = drain(queue, "q", lambda body: seen.append(Body.model_validate(body).run_id))
    assert settlement.outcome == "completed"
    assert seen == ["r1"]
    assert queue.receive("q") == []
    assert queue.dead_letters("q") == []


@pytest.mark.parametrize(
    "error",
    [InvalidInput("bad body"), NotFound("training run", "r9")],
)
def test_hopeless_message_is_dead_lettered_with_reason(error: Exception) -> None:
    queue = _queue_with({"run_id": "r1"})

    def handle(body: dict[str, Any]) -> None:
        raise error

    [settlement] = drain(queue, "q", handle)
    assert settlement.outcome == "dead_lettered"
    [dead] = queue.dead_letters("q")
    assert dead.reason == type(error).__name__
    assert str(error) in dead.description


def test_invalid_body_is_dead_lettered() -> None:
    queue = _queue_with({"wrong": 1})
    [settlement] = drain(queue, "q", lambda body: Body.model_validate(body))
    assert settlement.outcome == "dead_lettered"
    assert queue.dead_letters("q")[0].reason == "ValidationError"


def test_transient_failure_is_retried_then_dead_lettered_by_the_queue() -> None:
    queue = _queue_with({"run_id": "r1"})

    def handle(body: dict[str, Any]) -> None:
        raise TransientProviderError("429 from provider", retry_after=1)

    outcomes = [s.outcome for _ in range(3) for s in drain(queue, "q", handle, visibility_timeout=0)]
    assert outcomes == ["abandoned", "abandoned", "abandoned"]
    assert queue.receive("q") == []
    assert len(queue.dead_letters("q")) == 1

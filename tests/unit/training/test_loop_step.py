"""start_or_poll_fine_tune: the fine-tune-jobs handler shared by the Functions host and the local loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lightning.domain.errors import InvalidInput, NotFound, ProviderError, TransientProviderError
from lightning.domain.messages import FINE_TUNE_DONE, FINE_TUNE_JOBS, StartFineTune
from lightning.services.training import FineTuneStep, TrainingPolicy, start_or_poll_fine_tune
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.queue import InMemoryQueue
from tests.fakes.runs import InMemoryRunStore
from tests.unit.training.conftest import bundle

NOW = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def queue(clock: FixedClock) -> InMemoryQueue:
    return InMemoryQueue(now=clock.now)


@pytest.fixture
def step(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
    queue: InMemoryQueue,
    clock: FixedClock,
):  # type: ignore[no-untyped-def]
    def handle(message: object) -> FineTuneStep:
        return start_or_poll_fine_tune(
            message,  # type: ignore[arg-type]
            bundle(runs, datasets, blobs, provider, queue),
            TrainingPolicy(poll_seconds=60, default_base_model="local-base"),
            clock=clock,
        )

    return handle


START = StartFineTune(agent_id="autonomous-agent", dataset_name="autonomous-agent-v1").model_dump(mode="json")


def test_start_then_polls_until_done(
    step, queue: InMemoryQueue, provider: FakeFineTuneProvider, clock: FixedClock
) -> None:  # type: ignore[no-untyped-def]
    first = step(START)

    assert first.run.job_id is not None
    assert first.run.base_model == "local-base"
    [(message_id, body, visible_at)] = queue.pending(FINE_TUNE_JOBS)
    assert message_id == f"poll-{first.run.id}-1" == first.scheduled_poll
    assert body == {"kind": "poll", "run_id": first.run.id, "attempt": 1}
    assert visible_at == NOW + timedelta(seconds=60)

    # drive the queue like a host would: receive due messages, handle, complete
    result = first
    for _ in range(20):
        clock.sleep(60)
        [received] = queue.receive(FINE_TUNE_JOBS)
        result = step(received.body)
        queue.complete(received)
        if result.terminal:
            break
    assert result.terminal
    assert result.done_sent
    assert result.run.state == "succeeded"
    assert queue.pending(FINE_TUNE_JOBS) == []
    [(done_id, done, _)] = queue.pending(FINE_TUNE_DONE)
    assert done_id == result.run.id
    assert done == {
        "run_id": result.run.id,
        "agent_id": "autonomous-agent",
        "state": "succeeded",
        "fine_tuned_model": result.run.fine_tuned_model,
    }
    assert provider.count("create_job") == 1


def test_default_epochs_apply_when_the_message_has_none(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
    queue: InMemoryQueue,
) -> None:
    result = start_or_poll_fine_tune(
        START,
        bundle(runs, datasets, blobs, provider, queue),
        TrainingPolicy(poll_seconds=60, default_base_model="gpt-4o-mini", default_epochs=4),
    )
    assert result.run.hyperparameters.n_epochs == 4
    assert result.run.base_model == "gpt-4o-mini"


def test_duplicate_deliveries_are_harmless(
    step, queue: InMemoryQueue, provider: FakeFineTuneProvider
) -> None:  # type: ignore[no-untyped-def]
    first = step(START)
    again = step(START)  # the start message delivered twice
    assert again.run.id == first.run.id
    assert provider.count("create_job") == 1
    assert len(queue.pending(FINE_TUNE_JOBS)) == 1  # same poll id: de-duplicated

    poll = {"kind": "poll", "run_id": first.run.id, "attempt": 1}
    step(poll)
    step(poll)  # redelivered poll schedules the same follow-up
    assert [m for m, _, _ in queue.pending(FINE_TUNE_JOBS)] == [
        f"poll-{first.run.id}-1",
        f"poll-{first.run.id}-2",
    ]

    for attempt in range(2, 10):
        last = step({"kind": "poll", "run_id": first.run.id, "attempt": attempt})
        if last.terminal:
            break
    step({"kind": "poll", "run_id": first.run.id, "attempt": 3})  # a late duplicate of an old poll
    assert len(queue.pending(FINE_TUNE_DONE)) == 1  # FineTuneDone de-duplicated by run id


def test_transient_error_while_polling_reschedules_after_retry_after(
    step, queue: InMemoryQueue, provider: FakeFineTuneProvider
) -> None:  # type: ignore[no-untyped-def]
    first = step(START)
    provider.fail("get_job", TransientProviderError("429", status_code=429, retry_after=300))
    result = step({"kind": "poll", "run_id": first.run.id, "attempt": 1})
    assert not result.terminal
    assert result.scheduled_poll == f"poll-{first.run.id}-2"
    scheduled = {m: at for m, _, at in queue.pending(FINE_TUNE_JOBS)}
    assert scheduled[f"poll-{first.run.id}-2"] == NOW + timedelta(seconds=300)


def test_transient_error_while_starting_propagates_for_redelivery(
    step, runs: InMemoryRunStore, provider: FakeFineTuneProvider, queue: InMemoryQueue
) -> None:  # type: ignore[no-untyped-def]
    provider.fail("upload_file", TransientProviderError("503", status_code=503))
    with pytest.raises(TransientProviderError):
        step(START)
    assert queue.pending(FINE_TUNE_JOBS) == []
    result = step(START)  # the redelivery resumes the same run
    assert result.run.job_id is not None
    assert len(runs.list()) == 1


def test_poll_resumes_a_run_whose_start_was_interrupted(
    step, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:  # type: ignore[no-untyped-def]
    provider.crash_after_create = True
    with pytest.raises(RuntimeError):
        step(START)
    [stored] = runs.list()
    result = step({"kind": "poll", "run_id": stored.id, "attempt": 1})
    assert result.run.job_id is not None
    assert provider.count("create_job") == 1


def test_permanent_start_failure_reports_done_failed(
    step, queue: InMemoryQueue, provider: FakeFineTuneProvider
) -> None:  # type: ignore[no-untyped-def]
    provider.fail("create_job", ProviderError("quota exceeded", status_code=400))
    result = step(START)
    assert result.terminal
    assert result.run.state == "failed"
    [(_, done, _)] = queue.pending(FINE_TUNE_DONE)
    assert done["state"] == "failed"


@pytest.mark.parametrize("body", [{"kind": "nope"}, {"kind": "start"}, {"kind": "poll", "attempt": "x"}])
def test_bad_messages_are_invalid_input(step, body: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="fine-tune-jobs"):
        step(body)


def test_poll_of_unknown_run_is_not_found(step) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        step({"kind": "poll", "run_id": "run-missing", "attempt": 1})

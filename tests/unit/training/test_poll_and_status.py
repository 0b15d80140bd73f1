"""poll_training, training_status, cancel_training and list_training_runs on fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lightning.domain.errors import Conflict, NotFound
from lightning.domain.training import Hyperparameters, TrainingRun
from lightning.services.training import (
    StartTraining,
    cancel_training,
    list_training_runs,
    poll_training,
    start_training,
    training_status,
)
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider, Snapshot
from tests.fakes.runs import InMemoryRunStore
from tests.unit.training.conftest import bundle


@pytest.fixture
def run(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> TrainingRun:
    req = StartTraining(
        agent_id="autonomous-agent",
        dataset_name="autonomous-agent-v1",
        base_model="gpt-4o-mini",
        hyperparameters=Hyperparameters(n_epochs=3),
    )
    return start_training(req, bundle(runs, datasets, blobs, provider)).run


def test_poll_walks_the_state_machine_to_succeeded(
    run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:
    seen = []
    terminal = False
    while not terminal:
        run, terminal = poll_training(run, runs=runs, provider=provider)
        seen.append(run.state)

    assert seen == ["validating_files", "queued", "running", "running", "succeeded"]
    stored = runs.get(run.id)
    assert stored.state == "succeeded"
    assert stored.fine_tuned_model
    assert stored.fine_tuned_model.startswith("ft:gpt-4o-mini:")
    assert stored.metrics.trained_tokens == 45230
    assert stored.metrics.train_loss == pytest.approx(0.318)
    assert stored.started_at is not None
    assert stored.finished_at is not None
    assert stored.duration_seconds == pytest.approx(180)  # job created → finished, as the provider says
    # terminal is final: another poll does not even ask the provider
    calls = provider.count("get_job")
    again, terminal = poll_training(stored, runs=runs, provider=provider)
    assert terminal
    assert again.state == "succeeded"
    assert provider.count("get_job") == calls


def test_running_status_has_progress_epoch_losses_and_eta(
    run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:
    assert run.job_id is not None
    for _ in range(3):  # validating_files, queued, running at step 10
        status = training_status(run.job_id, runs=runs, provider=provider)
    status = training_status(run.job_id, runs=runs, provider=provider)  # step 20 of 30, 60 s later

    assert status.status == "running"
    assert status.progress_percent == 66
    assert (status.current_epoch, status.total_epochs) == (2, 3)
    assert status.training_loss == pytest.approx(0.5)
    assert status.validation_loss == pytest.approx(0.55)
    # 10 steps in 60 s observed → 10 steps left take 60 s
    assert status.estimated_seconds_remaining == pytest.approx(60)
    assert status.run_id == run.id
    assert not status.terminal


def test_failed_job_records_the_provider_error(
    runs: InMemoryRunStore, datasets: InMemoryDatasetStore, blobs: InMemoryBlobStore
) -> None:
    provider = FakeFineTuneProvider(
        plan=[
            Snapshot("validating_files"),
            Snapshot("failed", error="Training file has 3 lines without messages"),
        ]
    )
    req = StartTraining(agent_id="autonomous-agent", dataset_name="autonomous-agent-v1", base_model="m")
    run = start_training(req, bundle(runs, datasets, blobs, provider)).run
    assert run.job_id is not None
    training_status(run.job_id, runs=runs, provider=provider)
    status = training_status(run.job_id, runs=runs, provider=provider)

    assert status.status == "failed"
    assert status.terminal
    assert status.error == "Training file has 3 lines without messages"
    assert runs.get(run.id).error == status.error


def test_a_job_the_provider_forgot_fails_the_run(
    run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:
    provider.jobs.clear()
    polled, terminal = poll_training(run, runs=runs, provider=provider)
    assert terminal
    assert polled.state == "failed"
    assert "no longer knows" in (polled.error or "")


def test_concurrent_poll_keeps_the_stored_answer(
    run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:
    stale = run
    fresh, _ = poll_training(run, runs=runs, provider=provider)
    polled, _ = poll_training(
        stale, runs=runs, provider=provider
    )  # stale etag: loses, returns the stored run
    assert polled.etag == runs.get(run.id).etag
    assert fresh.state == "validating_files"


def test_late_older_status_never_moves_a_run_backwards(run: TrainingRun, runs: InMemoryRunStore) -> None:
    provider = FakeFineTuneProvider(plan=[Snapshot("running", step=1, total_steps=10), Snapshot("queued")])
    provider.jobs = {}
    running = runs.update(run.progress_to("running"))
    provider.create_job(
        base_model="m",
        training_file="f",
        validation_file=None,
        hyperparameters=Hyperparameters(),
        suffix=None,
        seed=None,
        idempotency_key="k",
    )
    job_id = next(iter(provider.jobs))
    running = runs.update(running.model_copy(update={"job_id": job_id}))
    polled, _ = poll_training(running, runs=runs, provider=provider)
    polled, _ = poll_training(polled, runs=runs, provider=provider)
    assert polled.state == "running"


def test_unknown_job_is_not_found(runs: InMemoryRunStore, provider: FakeFineTuneProvider) -> None:
    with pytest.raises(NotFound, match="ftjob-nope"):
        training_status("ftjob-nope", runs=runs, provider=provider)


def test_status_accepts_the_run_id_too(
    run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider
) -> None:
    assert training_status(run.id, runs=runs, provider=provider).job_id == run.job_id


def test_cancel_running_job(run: TrainingRun, runs: InMemoryRunStore, provider: FakeFineTuneProvider) -> None:
    assert run.job_id is not None
    cancelled = cancel_training(run.job_id, runs=runs, provider=provider)
    assert cancelled.state == "cancelled"
    assert cancelled.finished_at is not None
    assert provider.jobs[run.job_id].job.status == "cancelled"
    status = training_status(run.job_id, runs=runs, provider=provider)
    assert status.status == "cancelled"
    assert status.terminal
    with pytest.raises(Conflict, match="already cancelled"):
        cancel_training(run.job_id, runs=runs, provider=provider)


def test_cancel_before_a_job_exists_is_local(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.crash_after_create = False
    provider.fail("upload_file", RuntimeError("crash"))
    req = StartTraining(agent_id="autonomous-agent", dataset_name="autonomous-agent-v1", base_model="m")
    with pytest.raises(RuntimeError):
        start_training(req, bundle(runs, datasets, blobs, provider))
    [stored] = runs.list()
    cancelled = cancel_training(stored.id, runs=runs, provider=provider)
    assert cancelled.state == "cancelled"
    assert provider.count("cancel_job") == 0


def test_list_newest_first_and_by_agent(runs: InMemoryRunStore) -> None:
    def make(i: int, agent: str) -> TrainingRun:
        return TrainingRun(
            id=f"run-{i}",
            agent_id=agent,
            dataset_name="d",
            dataset_sha256="s",
            base_model="m",
            provider="fake",
            idempotency_key=f"k{i}",
            created_at=datetime(2026, 1, 1, 0, i, tzinfo=UTC),
        )

    for i, agent in enumerate(["a", "b", "a"]):
        runs.create_or_get(make(i, agent))
    assert [r.id for r in list_training_runs(runs=runs)] == ["run-2", "run-1", "run-0"]
    assert [r.id for r in list_training_runs(runs=runs, agent_id="a", limit=1)] == ["run-2"]

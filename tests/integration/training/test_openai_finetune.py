"""The training services on real adapters: the ``openai`` SDK over HTTP to the fault-injecting
fine-tuning server, SQLite runs and datasets, the local blob store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.retry import RetryPolicy
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.bootstrap import openai_endpoint
from lightning.config import Settings
from lightning.domain.dataset import DatasetManifest
from lightning.domain.errors import TransientProviderError
from lightning.domain.training import Hyperparameters
from lightning.ports.bundles import TrainingPorts
from lightning.services.training import (
    StartTraining,
    cancel_training,
    poll_training,
    start_training,
    training_status,
)
from tests.fakes.queue import InMemoryQueue
from tests.integration.training.ft_server import Fault, FineTuneServer, Step


class Ports:
    def __init__(self, settings: Settings, *, max_attempts: int = 6) -> None:
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(max_attempts=max_attempts, sleep=self.sleeps.append, random=lambda: 0.5)
        self.provider = OpenAIFineTuneProvider.connect(openai_endpoint(settings), retry=self.retry)
        self.runs = SqliteRunStore.at(settings.sqlite_path)
        self.datasets = SqliteDatasetStore.at(settings.sqlite_path)
        self.blobs = LocalBlobStore(settings.datasets_dir)

    def start(self, **changes: Any):  # type: ignore[no-untyped-def]
        values: dict[str, Any] = {
            "agent_id": "autonomous-agent",
            "dataset_name": "autonomous-agent-v1",
            "base_model": "gpt-4o-mini",
            "hyperparameters": Hyperparameters(n_epochs=3, learning_rate_multiplier=0.1),
            "seed": 11,
        }
        values.update(changes)
        return start_training(
            StartTraining.model_validate(values),
            TrainingPorts(
                runs=self.runs,
                datasets=self.datasets,
                blobs=self.blobs,
                provider=self.provider,
                queue=InMemoryQueue(),
            ),
        )

    def status(self, job_id: str):  # type: ignore[no-untyped-def]
        return training_status(job_id, runs=self.runs, provider=self.provider)


@pytest.fixture
def ports(settings: Settings, dataset: DatasetManifest) -> Ports:
    del dataset
    return Ports(settings)


def test_happy_path_upload_create_poll_succeed(ports: Ports, ft_server: FineTuneServer) -> None:
    result = ports.start()
    run = result.run
    assert result.created
    assert run.job_id == "ftjob-000003"

    uploads = ft_server.calls("POST", r"/v1/files$")
    assert len(uploads) == 2
    assert {f["purpose"] for f in ft_server.files.values()} == {"fine-tune"}
    assert ft_server.file_content[run.training_file_id or ""].count(b"\n") == 12
    assert ft_server.file_content[run.validation_file_id or ""].count(b"\n") == 3
    [create] = ft_server.calls("POST", r"/v1/fine_tuning/jobs$")
    assert create.json == {
        "model": "gpt-4o-mini",
        "training_file": run.training_file_id,
        "validation_file": run.validation_file_id,
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 0.1}},
        },
        "metadata": {"lightning_idempotency_key": run.idempotency_key},
        "suffix": "autonomous-agent",
        "seed": 11,
    }
    # files were only used once processed: each was polled until the server said so
    assert len(ft_server.calls("GET", r"/v1/files/file-\d+$")) >= 2

    statuses = [ports.status(run.job_id or "") for _ in range(4)]
    assert [s.status for s in statuses] == ["validating_files", "queued", "running", "running"]
    running = statuses[-1]
    assert running.progress_percent == 60  # step 18 of 30
    assert (running.current_epoch, running.total_epochs) == (2, 3)
    assert running.training_loss == pytest.approx(0.412)
    assert running.validation_loss == pytest.approx(0.438)
    # steps 9 → 18 in 60 s: 0.15 steps/s, 12 steps left
    assert running.estimated_seconds_remaining == pytest.approx(80)

    done = ports.status(run.job_id or "")
    assert done.status == "succeeded"
    assert done.fine_tuned_model == f"ft:gpt-4o-mini:autonomous-agent:{run.job_id[-6:]}"  # type: ignore[index]
    assert done.training_loss == pytest.approx(0.318)  # from the (base64 CSV) result file
    assert done.validation_loss == pytest.approx(0.342)
    assert done.trained_tokens == 45230
    assert done.duration_seconds == pytest.approx(23 * 60)
    stored = ports.runs.get(run.id)
    assert stored.state == "succeeded"
    assert stored.fine_tuned_model == done.fine_tuned_model
    assert any("succeeded" in event.message for event in stored.events)


def test_identical_repeat_does_not_create_a_second_job(ports: Ports, ft_server: FineTuneServer) -> None:
    first = ports.start()
    second = ports.start()
    assert not second.created
    assert second.run.job_id == first.run.job_id
    assert ft_server.job_creations() == 1
    assert len(ft_server.calls("POST", r"/files$")) == 2


def test_failed_job_surfaces_the_provider_message(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.plan = [
        Step("validating_files"),
        Step(
            "failed",
            at_seconds=30,
            error={
                "code": "invalid_training_file",
                "message": "3 examples lack an assistant message",
                "param": "training_file",
            },
        ),
    ]
    run = ports.start().run
    ports.status(run.job_id or "")
    status = ports.status(run.job_id or "")
    assert status.status == "failed"
    assert status.error == "3 examples lack an assistant message (invalid_training_file)"
    assert ports.runs.get(run.id).error == status.error


def test_cancelled_job(ports: Ports, ft_server: FineTuneServer) -> None:
    run = ports.start().run
    ports.status(run.job_id or "")
    cancelled = cancel_training(run.job_id or "", runs=ports.runs, provider=ports.provider)
    assert cancelled.state == "cancelled"
    assert ft_server.jobs[run.job_id or ""]["status"] == "cancelled"
    assert len(ft_server.calls("POST", r"/cancel$")) == 1
    polled, terminal = poll_training(cancelled, runs=ports.runs, provider=ports.provider)
    assert terminal
    assert polled.state == "cancelled"


def test_429_storm_is_retried_honoring_retry_after(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.faults = [
        Fault("POST", r"^/files$", status=429, times=3, headers={"Retry-After": "2"}),
        Fault("POST", r"^/fine_tuning/jobs$", status=429, times=2, headers={"retry-after-ms": "250"}),
        Fault("GET", r"^/fine_tuning/jobs/[^/]+$", status=503, times=2),
    ]
    run = ports.start().run
    assert run.job_id is not None
    assert len(ft_server.calls("POST", r"/files$")) == 5  # 3 refused + 2 accepted
    assert ft_server.job_creations() == 1
    file_polls = [s for s in ports.sleeps if s == 1.0]  # the file-processing poll interval
    assert [s for s in ports.sleeps if s != 1.0] == [2.0, 2.0, 2.0, 0.25, 0.25]
    assert len(file_polls) == 2

    ports.sleeps.clear()
    status = ports.status(run.job_id)
    assert status.status == "validating_files"
    assert ports.sleeps == [0.25, 0.5]  # no Retry-After: exponential backoff x jitter (0.5)


def test_retries_are_bounded(settings: Settings, dataset: DatasetManifest, ft_server: FineTuneServer) -> None:
    ports = Ports(settings, max_attempts=3)
    ft_server.faults = [Fault("POST", r"^/files$", status=429, times=99, headers={"Retry-After": "1"})]
    with pytest.raises(TransientProviderError, match="still failing after 3 attempts"):
        ports.start()
    assert len(ft_server.calls("POST", r"/files$")) == 3
    [run] = ports.runs.list()
    assert run.state == "uploading"  # resumable: nothing was lost


def test_crash_between_upload_and_job_creation_then_retry_creates_one_job(
    settings: Settings, dataset: DatasetManifest, ft_server: FineTuneServer
) -> None:
    # the job is created but the answer never arrives, and this process gives up (a crash, for the run)
    crashing = Ports(settings, max_attempts=1)
    ft_server.faults = [Fault("POST", r"^/fine_tuning/jobs$", kind="lose_response")]
    with pytest.raises(TransientProviderError):
        crashing.start()
    [stored] = crashing.runs.list()
    assert stored.job_id is None
    assert stored.training_file_id is not None
    assert ft_server.job_creations() == 1

    # a new process retries the same start
    result = Ports(settings).start()

    assert not result.created
    assert ft_server.job_creations() == 1  # found through the job's metadata, not created again
    assert result.run.job_id == next(iter(ft_server.jobs))
    assert len(ft_server.calls("POST", r"/files$")) == 2  # no re-upload either
    listing = ft_server.calls("GET", r"/fine_tuning/jobs$")[-1]
    assert ("metadata[lightning_idempotency_key]", stored.idempotency_key) in listing.query


def test_lost_create_answer_within_one_call_is_not_retried_into_a_second_job(
    ports: Ports, ft_server: FineTuneServer
) -> None:
    ft_server.faults = [Fault("POST", r"^/fine_tuning/jobs$", kind="lose_response")]
    run = ports.start().run
    assert run.job_id is not None
    assert ft_server.job_creations() == 1
    assert len(ft_server.calls("POST", r"/fine_tuning/jobs$")) == 1


def test_permanent_error_is_recorded_on_the_run(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.faults = [
        Fault(
            "POST",
            r"^/fine_tuning/jobs$",
            status=400,
            body={"error": {"message": "Quota exceeded for fine-tuning jobs", "code": "quota_exceeded"}},
        )
    ]
    result = ports.start()
    assert result.run.state == "failed"
    assert "Quota exceeded for fine-tuning jobs" in (result.run.error or "")
    assert "HTTP 400" in (result.run.error or "")
    assert len(ft_server.calls("POST", r"/fine_tuning/jobs$")) == 1  # never retried
    assert ports.status(result.run.id).error == result.run.error


def test_rejected_file_fails_the_run(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.reject_next_file = "Line 3: missing 'messages'"
    result = ports.start()
    assert result.run.state == "failed"
    assert "Line 3: missing 'messages'" in (result.run.error or "")
    assert ft_server.job_creations() == 0


def test_connection_drops_are_transient(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.faults = [Fault("GET", r"^/files/", kind="drop", times=2)]
    run = ports.start().run
    assert run.job_id is not None
    assert ports.sleeps[:2] == [0.25, 0.5]


def test_events_survive_in_the_stored_run_as_json(ports: Ports) -> None:
    run = ports.start().run
    for _ in range(3):
        ports.status(run.job_id or "")
    stored = ports.runs.get(run.id)
    dumped = json.loads(stored.model_dump_json())
    assert dumped["metrics"]["step"] == 9
    assert [e["type"] for e in dumped["events"]][-2:] == ["metrics", "message"]


def test_provider_without_job_metadata_still_gets_its_job(ports: Ports, ft_server: FineTuneServer) -> None:
    ft_server.faults = [
        Fault(
            "POST",
            r"^/fine_tuning/jobs$",
            status=400,
            body={
                "error": {"message": "Unrecognized request argument supplied: metadata", "param": "metadata"}
            },
        )
    ]
    run = ports.start().run
    assert run.state != "failed"
    assert run.job_id is not None
    first, second = ft_server.calls("POST", r"/fine_tuning/jobs$")
    assert "metadata" in first.json
    assert "metadata" not in second.json

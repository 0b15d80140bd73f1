"""The fine-tune loop step on real parts: SQLite queue + runs + datasets, local blobs, the openai SDK
against the fine-tuning stand-in — driven the way a host drives it (receive → handle → complete),
including a redelivered start and a 429 while polling."""

from __future__ import annotations

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.retry import RetryPolicy
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.db import shared_database
from lightning.adapters.sqlite.queue import SqliteQueue
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.bootstrap import openai_endpoint
from lightning.config import Settings
from lightning.domain.dataset import DatasetManifest
from lightning.domain.messages import FINE_TUNE_DONE, FINE_TUNE_JOBS, StartFineTune
from lightning.ports.bundles import TrainingPorts
from lightning.services.training import FineTuneStep, TrainingPolicy, start_or_poll_fine_tune
from tests.integration.training.ft_server import Fault, FineTuneServer


def test_start_message_to_fine_tune_done(
    settings: Settings, dataset: DatasetManifest, ft_server: FineTuneServer
) -> None:
    del dataset
    queue = SqliteQueue(shared_database(settings.embedded_db_path))
    runs = SqliteRunStore.at(settings.sqlite_path)
    sleeps: list[float] = []
    provider = OpenAIFineTuneProvider.connect(
        openai_endpoint(settings), retry=RetryPolicy(max_attempts=2, sleep=sleeps.append, random=lambda: 0.0)
    )

    def handle(body: dict) -> FineTuneStep:  # type: ignore[type-arg]
        return start_or_poll_fine_tune(
            body,
            TrainingPorts(
                runs=runs,
                datasets=SqliteDatasetStore.at(settings.sqlite_path),
                blobs=LocalBlobStore(settings.datasets_dir),
                provider=provider,
                queue=queue,
            ),
            # due at once: the test drives time by receiving
            TrainingPolicy(poll_seconds=0.0, default_base_model=settings.base_model or ""),
        )

    start = StartFineTune(agent_id="autonomous-agent", dataset_name="autonomous-agent-v1")
    queue.send(FINE_TUNE_JOBS, start.model_dump(mode="json"), message_id="start-1")
    queue.send(FINE_TUNE_JOBS, start.model_dump(mode="json"), message_id="start-1-copy")  # a duplicate
    # the provider rate-limits one poll past our retries: the step re-schedules instead of failing
    ft_server.faults = [
        Fault("GET", r"^/fine_tuning/jobs/ftjob-[^/]+$", status=429, times=2, headers={"Retry-After": "0"})
    ]

    handled = 0
    done_steps = []
    while handled < 30:
        received = queue.receive(FINE_TUNE_JOBS, max_messages=1)
        if not received:
            break
        step = handle(received[0].body)
        queue.complete(received[0])
        handled += 1
        if step.done_sent:
            done_steps.append(step)

    assert ft_server.job_creations() == 1
    assert done_steps
    assert {s.run.state for s in done_steps} == {"succeeded"}
    [done] = queue.receive(FINE_TUNE_DONE, max_messages=10)
    assert done.message_id == done_steps[0].run.id
    assert done.body["state"] == "succeeded"
    assert done.body["fine_tuned_model"] == done_steps[0].run.fine_tuned_model
    assert runs.get(done_steps[0].run.id).state == "succeeded"
    assert queue.receive(FINE_TUNE_JOBS) == []
    assert ft_server.faults[0].times == 0  # both 429s were served...
    assert [s for s in sleeps if s != 1.0] == [
        0.0
    ]  # ...one retried in the adapter, then the step re-scheduled the poll

"""A workshop base-model name trained by another model (gpt-4o-mini → local-base on this machine) is said
so by the run, the status view and the CLI's blocks; a provider that trains the name itself adds nothing."""

from __future__ import annotations

from typing import Any

from lightning.commands.training import status_lines
from lightning.domain.training import Hyperparameters
from lightning.ports.finetune import ProviderJob
from lightning.services.training import StartTraining, poll_training, start_training, training_status
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.runs import InMemoryRunStore
from tests.unit.training.conftest import bundle


class AliasingProvider(FakeFineTuneProvider):
    """Answers like the local model server: jobs on an alias name the model that trains them."""

    def create_job(self, **kwargs: Any) -> ProviderJob:
        job = super().create_job(**kwargs)
        entry = self.jobs[job.job_id]
        entry.job = job.model_copy(update={"served_by": "local-base"})
        return entry.job


def start(base_model: str, provider: FakeFineTuneProvider, runs, datasets, blobs):  # type: ignore[no-untyped-def]
    request = StartTraining(
        agent_id="autonomous-agent",
        dataset_name="autonomous-agent-v1",
        base_model=base_model,
        hyperparameters=Hyperparameters(n_epochs=3),
    )
    return start_training(request, bundle(runs, datasets, blobs, provider)).run


def test_the_run_and_its_status_say_who_serves_the_base_model(
    runs: InMemoryRunStore, datasets: InMemoryDatasetStore, blobs: InMemoryBlobStore
) -> None:
    provider = AliasingProvider()
    run = start("gpt-4o-mini", provider, runs, datasets, blobs)

    assert run.served_by == "local-base"  # known from the create answer: start-training can say so
    assert runs.get(run.id).served_by == "local-base"
    terminal = False
    while not terminal:  # polls keep it (the fake's later answers carry it too)
        run, terminal = poll_training(run, runs=runs, provider=provider)
    assert run.served_by == "local-base"
    assert run.fine_tuned_model is not None
    assert run.fine_tuned_model.startswith("ft:gpt-4o-mini:")  # the name asked for, not local-base's

    assert run.job_id is not None
    status = training_status(run.job_id, runs=runs, provider=provider)
    assert (status.base_model, status.served_by) == ("gpt-4o-mini", "local-base")
    lines = status_lines(status)
    assert lines[:3] == [
        ("Job ID", run.job_id),
        ("Status", "succeeded"),
        ("Base Model", "gpt-4o-mini is served by local-base on this machine"),
    ]


def test_a_provider_that_trains_the_name_itself_adds_no_line(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    run = start("gpt-4o-mini", provider, runs, datasets, blobs)
    assert run.served_by is None
    assert run.job_id is not None
    status = training_status(run.job_id, runs=runs, provider=provider)
    assert status.served_by is None
    assert [name for name, _ in status_lines(status)] == [
        "Job ID",
        "Status",
        "Progress",
        "Current Epoch",
        "Training Loss",
        "Validation Loss",
        "Estimated Time Remaining",
    ]

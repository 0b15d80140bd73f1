"""start_training on fakes: uploads, idempotency, crash recovery, permanent and transient errors."""

from __future__ import annotations

import pytest

from lightning.domain.errors import InvalidInput, NotFound, ProviderError, TransientProviderError
from lightning.domain.training import Hyperparameters
from lightning.services.training import StartTraining, start_training
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.runs import InMemoryRunStore
from tests.unit.training.conftest import bundle, put_dataset


def request(**changes: object) -> StartTraining:
    values: dict[str, object] = {
        "agent_id": "autonomous-agent",
        "dataset_name": "autonomous-agent-v1",
        "base_model": "gpt-4o-mini",
        "hyperparameters": Hyperparameters(n_epochs=3, learning_rate_multiplier=0.1),
    }
    values.update(changes)
    return StartTraining.model_validate(values)


def start(req: StartTraining, runs, datasets, blobs, provider):  # type: ignore[no-untyped-def]
    return start_training(req, bundle(runs, datasets, blobs, provider))


def test_start_uploads_both_files_and_creates_one_job(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    result = start(request(), runs, datasets, blobs, provider)

    run = result.run
    assert result.created
    assert run.job_id is not None
    assert run.job_id.startswith("ftjob-")
    assert run.state == "validating_files"  # the provider's first answer for a new job
    assert provider.count("upload_file") == 2
    assert [c[1]["file_id"] for c in provider.calls if c[0] == "wait_for_file"] == [
        run.training_file_id,
        run.validation_file_id,
    ]
    created = next(args for name, args in provider.calls if name == "create_job")
    assert created["suffix"] == "autonomous-agent"
    assert created["validation_file"] == run.validation_file_id
    assert created["hyperparameters"] == Hyperparameters(n_epochs=3, learning_rate_multiplier=0.1)
    assert created["idempotency_key"] == run.idempotency_key
    # what was uploaded is the dataset's bytes, fetched from the blob store
    assert provider.files[run.training_file_id or ""] == blobs.blobs["autonomous-agent-v1/train.jsonl"]
    assert runs.get(run.id).job_id == run.job_id  # durable


def test_identical_repeat_returns_the_existing_run_without_a_second_job(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    first = start(request(), runs, datasets, blobs, provider)
    second = start(request(), runs, datasets, blobs, provider)

    assert not second.created
    assert second.run.id == first.run.id
    assert second.run.job_id == first.run.job_id
    assert provider.count("create_job") == 1
    assert provider.count("upload_file") == 2
    # other hyperparameters are another run
    third = start(request(hyperparameters=Hyperparameters(n_epochs=2)), runs, datasets, blobs, provider)
    assert third.created
    assert third.run.id != first.run.id
    assert provider.count("create_job") == 2


def test_crash_between_job_creation_and_recording_it_is_repaired_by_find_job(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.crash_after_create = True
    with pytest.raises(RuntimeError, match="simulated crash"):
        start(request(), runs, datasets, blobs, provider)
    [stored] = runs.list()
    assert stored.job_id is None
    assert stored.training_file_id is not None

    result = start(request(), runs, datasets, blobs, provider)

    assert not result.created
    assert provider.count("create_job") == 1  # no second paid job
    assert provider.count("upload_file") == 2  # files uploaded before the crash are reused
    assert result.run.job_id == next(iter(provider.jobs))


def test_crash_during_upload_resumes_with_the_missing_file_only(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    # the training file uploads, then the process dies while uploading the validation file
    original = provider.upload_file
    uploads = {"n": 0}

    def flaky(path):  # type: ignore[no-untyped-def]
        uploads["n"] += 1
        if uploads["n"] == 2:
            raise FakeUploadCrash()
        return original(path)

    provider.upload_file = flaky  # type: ignore[method-assign]
    with pytest.raises(FakeUploadCrash):
        start(request(), runs, datasets, blobs, provider)
    [stored] = runs.list()
    assert stored.state == "uploading"
    assert stored.training_file_id
    assert stored.validation_file_id is None

    result = start(request(), runs, datasets, blobs, provider)

    assert uploads["n"] == 3  # train once, validation twice (the lost one again)
    assert result.run.validation_file_id is not None
    assert result.run.job_id is not None


class FakeUploadCrash(Exception):
    pass


def test_permanent_error_fails_the_run_with_the_provider_message_and_restart_starts_again(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.fail(
        "create_job",
        ProviderError("fake refused (HTTP 400): invalid training_file: missing messages", status_code=400),
    )
    result = start(request(), runs, datasets, blobs, provider)

    assert result.run.state == "failed"
    assert "invalid training_file" in (result.run.error or "")
    assert runs.get(result.run.id).state == "failed"

    again = start(request(), runs, datasets, blobs, provider)
    assert not again.created
    assert again.run.id == result.run.id

    restarted = start(request(restart=True), runs, datasets, blobs, provider)
    assert restarted.created
    assert restarted.run.attempt == 2
    assert restarted.run.job_id is not None
    assert restarted.run.idempotency_key == f"{result.run.idempotency_key}-2"


def test_transient_error_after_retries_leaves_the_run_resumable(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.fail("wait_for_file", TransientProviderError("still 503 after 6 attempts", status_code=503))
    with pytest.raises(TransientProviderError):
        start(request(), runs, datasets, blobs, provider)
    [stored] = runs.list()
    assert stored.state == "validating_files"
    assert stored.job_id is None

    result = start(request(), runs, datasets, blobs, provider)
    assert result.run.job_id is not None
    assert provider.count("create_job") == 1


def test_validation_file_is_optional(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    result = start(request(use_validation=False), runs, datasets, blobs, provider)
    assert result.run.validation_file_id is None
    assert provider.count("upload_file") == 1

    put_dataset(datasets, blobs, name="no-validation", validation=False)
    other = start(request(dataset_name="no-validation"), runs, datasets, blobs, provider)
    assert other.run.use_validation is False
    assert other.run.validation_file_id is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"agent_id": "approval-agent"}, "belongs to agent"),
        ({"suffix": "Has Spaces"}, "--suffix"),
        ({"suffix": "x" * 19}, "--suffix"),
        ({"dataset_name": "dpo-set"}, "supervised fine-tuning needs a jsonl dataset"),
    ],
)
def test_bad_requests_are_invalid_input(
    changes: dict[str, object],
    message: str,
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    put_dataset(datasets, blobs, name="dpo-set", fmt="dpo")
    with pytest.raises(InvalidInput, match=message):
        start(request(**changes), runs, datasets, blobs, provider)
    assert provider.calls == []


def test_unknown_dataset_is_not_found(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    with pytest.raises(NotFound, match="nope"):
        start(request(dataset_name="nope"), runs, datasets, blobs, provider)


def test_custom_suffix_and_seed_reach_the_provider(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    start(request(suffix="aa-v2", seed=7), runs, datasets, blobs, provider)
    created = next(args for name, args in provider.calls if name == "create_job")
    assert created["suffix"] == "aa-v2"
    assert created["seed"] == 7

"""start_training on fakes: uploads, idempotency, crash recovery, permanent and transient errors."""

from __future__ import annotations

import pytest

from lightning.domain.errors import Conflict, InvalidInput, NotFound, ProviderError, TransientProviderError
from lightning.domain.training import Hyperparameters
from lightning.services.training import (
    StartTraining,
    cancel_training,
    poll_training,
    start_failure,
    start_training,
)
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider, Snapshot
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


def test_a_start_refused_before_its_job_existed_is_tried_again_by_the_same_request(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.fail(
        "create_job",
        ProviderError("fake refused (HTTP 400): model 'gpt-4o-mini' not found", status_code=400),
    )
    failed = start(request(), runs, datasets, blobs, provider)

    assert failed.created
    assert failed.run.state == "failed"
    assert failed.run.job_id is None
    assert "model 'gpt-4o-mini' not found" in (failed.run.error or "")
    assert runs.get(failed.run.id).state == "failed"
    error = start_failure(failed)
    assert isinstance(error, ProviderError)
    assert "failed before a job was created: fake refused (HTTP 400)" in str(error)
    assert "run the same start-training again" in str(error)

    # the same request, no --restart: a new attempt, not the failed run
    again = start(request(), runs, datasets, blobs, provider)

    assert again.created
    assert again.retried is not None
    assert again.retried.id == failed.run.id
    assert again.run.id != failed.run.id
    assert again.run.attempt == 2
    assert again.run.idempotency_key == f"{failed.run.idempotency_key}-2"
    assert again.run.job_id is not None
    assert start_failure(again) is None
    assert provider.count("create_job") == 2
    assert runs.get(failed.run.id).state == "failed"  # the failed attempt stays on record

    # the attempt that got a job is now the run an identical request returns
    third = start(request(), runs, datasets, blobs, provider)
    assert not third.created
    assert third.retried is None
    assert third.run.id == again.run.id
    assert provider.count("create_job") == 2


def test_every_failed_attempt_is_retried_until_one_gets_a_job(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    refused = ProviderError("fake refused (HTTP 400): invalid training_file", status_code=400)
    provider.fail("create_job", refused, refused)
    first = start(request(), runs, datasets, blobs, provider)
    second = start(request(), runs, datasets, blobs, provider)
    third = start(request(), runs, datasets, blobs, provider)

    assert [r.run.state for r in (first, second)] == ["failed", "failed"]
    assert second.retried is not None
    assert second.retried.id == first.run.id
    assert third.retried is not None
    assert third.retried.id == second.run.id
    assert third.run.attempt == 3
    assert third.run.job_id is not None


def test_a_run_whose_job_failed_needs_restart_and_says_so(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
) -> None:
    provider = FakeFineTuneProvider(plan=[Snapshot("failed", error="Line 4 is not valid JSON")])
    first = start(request(), runs, datasets, blobs, provider)
    run, terminal = poll_training(first.run, runs=runs, provider=provider)
    assert terminal
    assert run.state == "failed"
    assert run.job_id is not None

    again = start(request(), runs, datasets, blobs, provider)

    assert not again.created
    assert again.retried is None
    assert again.run.id == first.run.id
    assert provider.count("create_job") == 1  # a job was paid for: no silent second one
    error = start_failure(again)
    assert isinstance(error, ProviderError)
    assert str(error) == (
        f"training run {run.id} (job {run.job_id}) failed: Line 4 is not valid JSON; pass --restart to start again"
    )

    restarted = start(request(restart=True), runs, datasets, blobs, provider)
    assert restarted.created
    assert restarted.run.attempt == 2
    assert restarted.run.job_id is not None
    assert restarted.run.idempotency_key == f"{first.run.idempotency_key}-2"


def test_a_failed_run_whose_job_exists_after_all_is_not_retried_silently(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    """create_job's answer was an error, yet the provider made the job (it shows up under the run's key):
    a new attempt would pay for a second job, so the failed run stands until --restart."""
    provider.fail("create_job", ProviderError("fake refused (HTTP 400): odd", status_code=400))
    failed = start(request(), runs, datasets, blobs, provider)
    assert failed.run.training_file_id is not None
    provider.create_job(
        base_model="gpt-4o-mini",
        training_file=failed.run.training_file_id,
        validation_file=None,
        hyperparameters=Hyperparameters(),
        suffix=None,
        seed=None,
        idempotency_key=failed.run.idempotency_key,
    )

    again = start(request(), runs, datasets, blobs, provider)

    assert not again.created
    assert again.run.id == failed.run.id
    [job_id] = provider.jobs
    assert again.orphan_job == job_id
    assert str(start_failure(again)) == (
        f"training run {failed.run.id} failed (fake refused (HTTP 400): odd) yet fake holds job {job_id} for "
        f"it: see get-training-status --job-id {job_id}, or pass --restart to start again"
    )
    assert provider.count("create_job") == 2  # the test's own call; the service created none


def test_a_resumed_start_that_fails_before_its_job_is_tried_again_next_time(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    """The provider was unreachable (the run waits, resumable), then refuses the base model: the resuming
    call fails the run and says the same command tries again; the next call does."""
    provider.fail(
        "upload_file", TransientProviderError("cannot reach the local model server", status_code=None)
    )
    with pytest.raises(TransientProviderError):
        start(request(), runs, datasets, blobs, provider)
    provider.fail("create_job", ProviderError("fake refused (HTTP 400): no such model", status_code=400))

    resumed = start(request(), runs, datasets, blobs, provider)

    assert not resumed.created
    assert resumed.run.state == "failed"
    assert "run the same start-training again" in str(start_failure(resumed))
    again = start(request(), runs, datasets, blobs, provider)
    assert again.created
    assert again.run.attempt == 2
    assert again.run.job_id is not None


def test_a_run_cancelled_before_its_job_existed_is_not_restarted_without_restart(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
) -> None:
    provider.fail("wait_for_file", TransientProviderError("still 503 after 6 attempts", status_code=503))
    with pytest.raises(TransientProviderError):
        start(request(), runs, datasets, blobs, provider)
    [stored] = runs.list()
    cancelled = cancel_training(stored.id, runs=runs, provider=provider)
    assert cancelled.state == "cancelled"

    again = start(request(), runs, datasets, blobs, provider)

    assert not again.created
    assert again.run.id == stored.id
    error = start_failure(again)
    assert isinstance(error, Conflict)
    assert str(error) == f"training run {stored.id} was cancelled; pass --restart to start again"
    assert provider.count("create_job") == 0


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

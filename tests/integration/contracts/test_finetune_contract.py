"""The FineTuneProvider contract: the in-memory fake, ``OpenAIFineTuneProvider`` on the project's local
model server (real CPU training), and ``OpenAIFineTuneProvider`` built for Azure OpenAI (``AzureOpenAI``
client, Entra ID bearer token, api-version) against an HTTPS stand-in of Azure's fine-tuning routes.

The local model server really trains, so jobs are polled until they finish under a deadline; the fake and
the stand-in walk a fixed plan, one step per poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lightning.bootstrap import openai_endpoint
from lightning.domain.errors import NotFound, ProviderError
from lightning.domain.training import Hyperparameters
from lightning.ports.finetune import IDEMPOTENCY_METADATA_KEY, FineTuneProvider, ProviderJob
from tests.integration.model_server.data import jsonl, split_samples

TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Backend:
    provider: FineTuneProvider
    base_model: str
    training_file: Path
    long_training_file: Path  # with ``long_hyperparameters``: a job that runs until it is cancelled
    long_hyperparameters: Hyperparameters
    pause: Callable[[], None]  # between two polls of a job


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class _StaticTokenCredential:
    """A TokenCredential (what DefaultAzureCredential is to the SDK) handing out a known token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        del scopes, kwargs
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(
    params=[
        "fake",
        pytest.param("model_server", marks=pytest.mark.model_server),
        pytest.param("azure", marks=pytest.mark.azure),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
    from lightning.adapters.retry import RetryPolicy
    from lightning.config import Settings

    small = _write(tmp_path / "train.jsonl", jsonl(split_samples(20, 0, seed=5)[0]))
    if request.param == "fake":
        from tests.fakes.finetune import FakeFineTuneProvider

        yield Backend(FakeFineTuneProvider(), "gpt-4o-mini", small, small, Hyperparameters(), lambda: None)
        return
    if request.param == "model_server":
        server = request.getfixturevalue("model_server")
        settings = Settings(lightning_trainer="local", lightning_model_server=server.base_url)
        provider = OpenAIFineTuneProvider.connect(openai_endpoint(settings), file_poll_interval=0.02)
        long_file = _write(tmp_path / "long.jsonl", jsonl(split_samples(1000, 0, seed=8)[0]))
        yield Backend(
            provider,
            "local-base",
            small,
            long_file,
            Hyperparameters(n_epochs=50, batch_size=1),
            lambda: time.sleep(0.02),
        )
        return
    from tests.standins.azure_openai import AzureOpenAIStandIn

    standin = AzureOpenAIStandIn(tmp_path).start()
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("SSL_CERT_FILE", str(standin.ca_file))  # httpx's trust store for the SDK client
    settings = Settings(
        lightning_trainer="azure-openai",
        azure_openai_endpoint=standin.root,
        azure_openai_api_version="2025-04-01-preview",
    )
    provider = OpenAIFineTuneProvider.connect(
        openai_endpoint(settings),
        credential=_StaticTokenCredential(standin.token),
        retry=RetryPolicy(sleep=lambda _: None),
        file_poll_interval=0.01,
    )
    try:
        yield Backend(provider, "gpt-4o-mini", small, small, Hyperparameters(), lambda: None)
    finally:
        standin.stop()


def _create(backend: Backend, key: str, *, long: bool = False) -> ProviderJob:
    provider = backend.provider
    training = provider.upload_file(backend.long_training_file if long else backend.training_file)
    provider.wait_for_file(training, timeout=60)
    return provider.create_job(
        base_model=backend.base_model,
        training_file=training,
        validation_file=None,
        hyperparameters=backend.long_hyperparameters if long else Hyperparameters(),
        suffix="contract",
        seed=7,
        idempotency_key=key,
    )


def _finish(backend: Backend, job_id: str, timeout: float = 120.0) -> ProviderJob:
    deadline = time.monotonic() + timeout
    while (job := backend.provider.get_job(job_id)).status not in TERMINAL:
        assert time.monotonic() < deadline, f"{job_id} still {job.status} after {timeout}s"
        backend.pause()
    return job


def test_an_uploaded_file_becomes_ready(backend: Backend) -> None:
    file_id = backend.provider.upload_file(backend.training_file)
    assert file_id
    backend.provider.wait_for_file(file_id, timeout=60)


def test_an_unknown_file_is_a_provider_error(backend: Backend) -> None:
    with pytest.raises(ProviderError):
        backend.provider.wait_for_file("file-does-not-exist", timeout=5)


def test_a_job_carries_its_idempotency_key_and_is_found_by_it(backend: Backend) -> None:
    job = _create(backend, "contract-key-1")
    assert job.job_id
    assert job.model == backend.base_model
    assert job.metadata[IDEMPOTENCY_METADATA_KEY] == "contract-key-1"
    assert job.status not in {"failed", "cancelled"}
    found = backend.provider.find_job("contract-key-1")
    assert found is not None
    assert found.job_id == job.job_id
    assert backend.provider.find_job("contract-key-never-used") is None
    _finish(backend, job.job_id)  # leave nothing running behind


def test_a_job_runs_to_a_fine_tuned_model(backend: Backend) -> None:
    job = _finish(backend, _create(backend, "contract-key-2").job_id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model
    assert job.finished_at is not None
    assert job.events, "a finished job tells what happened"
    stamps = [event.created_at for event in job.events]
    assert stamps == sorted(stamps)  # newest last
    assert backend.provider.get_job(job.job_id).fine_tuned_model == job.fine_tuned_model


def test_unknown_jobs_are_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.provider.get_job("ftjob-does-not-exist")
    with pytest.raises(NotFound):
        backend.provider.cancel_job("ftjob-does-not-exist")


def test_cancel_stops_a_running_job_but_not_a_finished_one(backend: Backend) -> None:
    job = _create(backend, "contract-key-3", long=True)
    cancelled = backend.provider.cancel_job(job.job_id)
    assert cancelled.status == "cancelled"
    after = _finish(backend, job.job_id)
    assert after.status == "cancelled"
    assert after.fine_tuned_model is None
    with pytest.raises(ProviderError) as refused:
        backend.provider.cancel_job(job.job_id)
    assert not isinstance(refused.value, NotFound)

"""The Azure OpenAI path: ``make_openai_client`` builds ``AzureOpenAI`` with an Entra ID token provider;
the same provider code must send the deployment-less Azure routes with the api-version and a bearer
token from the credential. Checked request by request against the local fine-tuning server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.openai.client import COGNITIVE_SCOPE
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.retry import RetryPolicy
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.bootstrap import openai_endpoint
from lightning.config import get_settings
from lightning.domain.training import Hyperparameters
from lightning.ports.bundles import TrainingPorts
from lightning.services.training import StartTraining, start_training, training_status
from tests.fakes.queue import InMemoryQueue
from tests.integration.training.conftest import store_dataset
from tests.integration.training.ft_server import FineTuneServer

API_VERSION = "2025-04-01-preview"


class StaticTokenCredential:
    """A TokenCredential: what DefaultAzureCredential is to the SDK, with a known token."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del kwargs
        self.scopes.append(scopes)
        return AccessToken("entra-token-123", int(time.time()) + 3600)


def test_azure_requests_have_the_azure_url_shape_api_version_and_bearer_token(
    ft_server: FineTuneServer, clean_env: Path
) -> None:
    settings = get_settings(
        lightning_trainer="azure-openai",
        azure_openai_endpoint=ft_server.root,
        azure_openai_api_version=API_VERSION,
    )
    assert settings.base_model == "gpt-4o-mini"
    store_dataset(settings)
    credential = StaticTokenCredential()
    provider = OpenAIFineTuneProvider.connect(
        openai_endpoint(settings), credential=credential, retry=RetryPolicy(sleep=lambda _: None)
    )
    assert provider.name == "azure-openai"
    runs = SqliteRunStore.at(settings.sqlite_path)

    run = start_training(
        StartTraining(
            agent_id="autonomous-agent",
            dataset_name="autonomous-agent-v1",
            base_model=settings.base_model or "",
            hyperparameters=Hyperparameters(n_epochs=2),
        ),
        TrainingPorts(
            runs=runs,
            datasets=SqliteDatasetStore.at(settings.sqlite_path),
            blobs=LocalBlobStore(settings.datasets_dir),
            provider=provider,
            queue=InMemoryQueue(),
        ),
    ).run
    assert run.job_id is not None
    status = training_status(run.job_id, runs=runs, provider=provider)
    assert status.status == "validating_files"

    assert ft_server.requests, "no request reached the server"
    shapes = {(r.method, r.path) for r in ft_server.requests}
    assert shapes == {
        ("POST", "/openai/files"),
        ("GET", f"/openai/files/{run.training_file_id}"),
        ("GET", f"/openai/files/{run.validation_file_id}"),
        ("GET", "/openai/fine_tuning/jobs"),
        ("POST", "/openai/fine_tuning/jobs"),
        ("GET", f"/openai/fine_tuning/jobs/{run.job_id}"),
        ("GET", f"/openai/fine_tuning/jobs/{run.job_id}/events"),
        ("GET", f"/openai/fine_tuning/jobs/{run.job_id}/checkpoints"),
    }
    for request in ft_server.requests:
        assert ("api-version", API_VERSION) in request.query, request.path
        assert request.headers["authorization"] == "Bearer entra-token-123"
        assert "api-key" not in request.headers
        assert "/deployments/" not in request.path  # fine-tuning is not a deployment route
    [create] = [r for r in ft_server.requests if r.method == "POST" and r.path.endswith("/jobs")]
    assert create.json["model"] == "gpt-4o-mini"
    assert create.json["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    # the token came from the credential, for the Cognitive Services scope
    assert credential.scopes
    assert set(credential.scopes) == {(COGNITIVE_SCOPE,)}

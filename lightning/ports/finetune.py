"""FineTuneProvider: the OpenAI fine-tuning API (Azure OpenAI, OpenAI, or the local model server).

Implemented by ``lightning.adapters.openai.finetune.OpenAIFineTuneProvider`` (one code path for all
three, through the ``openai`` SDK) and by ``tests.fakes.finetune.FakeFineTuneProvider``. Called by
``lightning.services.training``. Adapters retry transient failures themselves (429, 5xx, timeouts) and
raise ``TransientProviderError`` only once their retries are spent; ``ProviderError`` means the provider
refused for good (invalid file, quota, unknown model) and carries its message.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from lightning.domain.training import Hyperparameters, RunEvent, RunMetrics

ProviderEvent = RunEvent

IDEMPOTENCY_METADATA_KEY = "lightning_idempotency_key"


class ProviderJob(BaseModel):
    """The provider's view of a job, normalised."""

    job_id: str
    status: str = Field(
        description="The provider's status as answered (validating_files | queued | running | succeeded | "
        "failed | cancelled, or an Azure spelling); ``run_state_for`` maps it to a run state."
    )
    model: str
    fine_tuned_model: str | None = None
    served_by: str | None = Field(
        default=None,
        description="The model that trains when ``model`` is another name for it (the local model server "
        "serves gpt-4o-mini with local-base); None when the provider trains ``model`` itself.",
    )
    trained_tokens: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    estimated_finish: datetime | None = None
    result_files: list[str] = Field(default_factory=list)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    events: list[ProviderEvent] = Field(default_factory=list, description="Newest last.")
    metrics: RunMetrics = Field(
        default_factory=RunMetrics,
        description="Latest step/total_steps/epoch/total_epochs/train_loss/valid_loss/trained_tokens.",
    )


class FineTuneProvider(Protocol):
    name: str

    def upload_file(self, path: Path) -> str:
        """Upload a JSONL file with purpose fine-tune; returns the file id."""
        ...

    def wait_for_file(self, file_id: str, *, timeout: float = 600.0) -> None:
        """Block until the file is processed; ``ProviderError`` if the provider rejected it."""
        ...

    def create_job(
        self,
        *,
        base_model: str,
        training_file: str,
        validation_file: str | None,
        hyperparameters: Hyperparameters,
        suffix: str | None,
        seed: int | None,
        idempotency_key: str,
    ) -> ProviderJob:
        """Create a supervised job whose metadata carries ``idempotency_key`` (see ``find_job``)."""
        ...

    def find_job(self, idempotency_key: str) -> ProviderJob | None:
        """A job created earlier with this key (stored in the job's metadata), if any."""
        ...

    def get_job(self, job_id: str) -> ProviderJob:
        """Job with recent events and the latest metrics (``NotFound`` for an unknown id)."""
        ...

    def cancel_job(self, job_id: str) -> ProviderJob: ...

"""Training runs: one fine-tuning job and its explicit state machine.

created → uploading → validating_files → queued → running → succeeded
             │              │               │         │
             └──────────────┴───────────────┴─────────┴──→ failed | cancelled
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict

RunState = Literal[
    "created",  # recorded, nothing sent to the provider yet
    "uploading",  # dataset files being uploaded
    "validating_files",  # provider is checking the uploaded files / the job's files
    "queued",  # job created, waiting for capacity
    "running",  # training
    "succeeded",  # fine-tuned model available
    "failed",  # provider or validation error (see ``error``)
    "cancelled",  # cancelled by a user
]

TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

_ORDER: tuple[str, ...] = ("created", "uploading", "validating_files", "queued", "running", "succeeded")

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    state: frozenset(_ORDER[i + 1 :]) | {"failed", "cancelled"} for i, state in enumerate(_ORDER[:-1])
}
ALLOWED_TRANSITIONS.update({"succeeded": frozenset(), "failed": frozenset(), "cancelled": frozenset()})


class Hyperparameters(BaseModel):
    """Supervised fine-tuning hyperparameters; None means the provider's default ("auto")."""

    model_config = ConfigDict(frozen=True)

    n_epochs: int | None = Field(default=None, ge=1, le=50)
    learning_rate_multiplier: float | None = Field(default=None, gt=0, le=10)
    batch_size: int | None = Field(default=None, ge=1, le=256)


class RunMetrics(BaseModel):
    """Progress and quality as last seen from the provider."""

    step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    trained_tokens: int | None = None
    steps_per_second: float | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Provider-specific figures (accuracies...)."
    )


class TrainingRun(BaseModel):
    """A fine-tuning run, durable across restarts and hosts."""

    id: str = Field(description="Our run id; the provider's job id is ``job_id``.")
    agent_id: str
    dataset_name: str
    dataset_sha256: str
    base_model: str
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    seed: int | None = None
    suffix: str | None = Field(default=None, max_length=18)
    use_validation: bool = True
    provider: str = Field(description="local | azure-openai | openai")
    idempotency_key: str
    state: RunState = "created"
    job_id: str | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    etag: str | None = Field(default=None, exclude=True)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def advance(self, to: RunState, **changes: Any) -> TrainingRun:
        """A copy moved to state ``to``; staying in the same state is allowed, going back is not."""
        if to != self.state and to not in ALLOWED_TRANSITIONS[self.state]:
            raise Conflict(f"training run {self.id} cannot go from {self.state} to {to}", ident=self.id)
        now = utcnow()
        update: dict[str, Any] = {"state": to, "updated_at": now, **changes}
        if to == "running" and self.started_at is None:
            update.setdefault("started_at", now)
        if to in TERMINAL_STATES and self.finished_at is None:
            update.setdefault("finished_at", now)
        return self.model_copy(update=update)


def idempotency_key(
    *,
    agent_id: str,
    dataset_sha256: str,
    base_model: str,
    hyperparameters: Hyperparameters,
    seed: int | None,
    suffix: str | None,
    use_validation: bool,
) -> str:
    """Same dataset + same settings → same key → the existing run is returned, not paid for twice."""
    payload = json.dumps(
        {
            "agent_id": agent_id,
            "dataset_sha256": dataset_sha256,
            "base_model": base_model,
            "hyperparameters": hyperparameters.model_dump(),
            "seed": seed,
            "suffix": suffix,
            "use_validation": use_validation,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]

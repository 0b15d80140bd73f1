"""Training runs: one fine-tuning job and its explicit state machine.

created → uploading → validating_files → queued → running → succeeded
             │              │               │         │
             └──────────────┴───────────────┴─────────┴──→ failed | cancelled
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict, InvalidInput

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

# The provider's job statuses (OpenAI and Azure OpenAI spellings) → our states. Azure's older API
# versions answer ``pending``/``notRunning``/``created`` before training starts.
PROVIDER_STATUS: dict[str, RunState] = {
    "validating_files": "validating_files",
    "created": "validating_files",
    "pending": "queued",
    "notrunning": "queued",
    "queued": "queued",
    "paused": "running",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "cancelling": "running",
}

SUFFIX_MAX_LENGTH = 18
_SUFFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def run_state_for(provider_status: str) -> RunState | None:
    """Our state for a provider job status; None for a status we do not know (keep the current state)."""
    return PROVIDER_STATUS.get(provider_status.strip().lower())


def derive_suffix(agent_id: str) -> str:
    """The default model-name suffix: the agent id, lower-cased, limited to ``a-z0-9-_``, ≤ 18 chars."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", agent_id.lower()).strip("-_")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:SUFFIX_MAX_LENGTH].rstrip("-_")
    return cleaned or "lightning"


def check_suffix(suffix: str) -> str:
    """A user-given suffix, validated the way the fine-tuning services apply it (it becomes part of the
    model name ``ft:<base>:<org>:<suffix>:<id>``, so no ``:`` and no spaces)."""
    if len(suffix) > SUFFIX_MAX_LENGTH or not _SUFFIX_RE.match(suffix):
        raise InvalidInput(
            f"--suffix must be 1-{SUFFIX_MAX_LENGTH} characters of a-z, 0-9, '-' or '_' "
            f"starting with a letter or digit, got {suffix!r}",
            field="suffix",
        )
    return suffix


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
    steps_per_second: float | None = Field(default=None, description="Observed training speed, for the ETA.")
    estimated_finish: datetime | None = Field(
        default=None, description="The provider's own estimate, if any."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Provider-specific figures (accuracies...)."
    )


class RunEvent(BaseModel):
    """One provider event (status change, metrics line, message), newest last in ``TrainingRun.events``."""

    created_at: datetime
    level: str = "info"
    message: str
    type: str = "message"
    data: dict[str, Any] = Field(default_factory=dict)


MAX_STORED_EVENTS = 20


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
    served_by: str | None = Field(
        default=None,
        description="The model that really trains when base_model is another name for it (the local model "
        "server trains gpt-4o-mini as local-base); None when the provider trains base_model itself.",
    )
    error: str | None = Field(default=None, description="The provider's message when the run failed.")
    attempt: int = Field(
        default=1, ge=1, description="1 + how many times a failed/cancelled run was restarted."
    )
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    events: list[RunEvent] = Field(default_factory=list, description="Recent provider events, newest last.")
    job_created_at: datetime | None = Field(default=None, description="When the provider created the job.")
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

    def progress_to(self, to: RunState | None, **changes: Any) -> TrainingRun:
        """Like ``advance`` but never goes back: an older status (a late or repeated provider answer)
        keeps the current state and still records ``changes``. A terminal run does not change at all."""
        if self.terminal:
            return self
        if to is None or (to != self.state and to not in ALLOWED_TRANSITIONS[self.state]):
            to = self.state
        return self.advance(to, **changes)

    @property
    def duration_seconds(self) -> float | None:
        """Job creation → finish, as the provider reports it (our own timestamps when it does not)."""
        if self.finished_at is None:
            return None
        start = self.job_created_at or self.started_at or self.created_at
        return max(0.0, (self.finished_at - start).total_seconds())


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


def step_rate(samples: Sequence[tuple[datetime, int]]) -> float | None:
    """Steps per second observed over ``(time, step)`` samples (first to last); None with < 2 points."""
    ordered = sorted(samples, key=lambda sample: sample[0])
    if len(ordered) < 2:
        return None
    (t0, s0), (t1, s1) = ordered[0], ordered[-1]
    seconds = (t1 - t0).total_seconds()
    if seconds <= 0 or s1 <= s0:
        return None
    return (s1 - s0) / seconds


def epoch_of(step: int, total_steps: int, total_epochs: int) -> int:
    """The 1-based epoch a step falls in, when steps are spread evenly over the epochs."""
    if total_steps <= 0 or total_epochs <= 0:
        return 1
    per_epoch = total_steps / total_epochs
    return max(1, min(total_epochs, math.ceil(step / per_epoch) if step > 0 else 1))


def progress_percent(run: TrainingRun) -> int:
    """0-100: steps done when the provider reports them, else by state."""
    if run.state == "succeeded":
        return 100
    metrics = run.metrics
    if metrics.step is not None and metrics.total_steps:
        return max(0, min(99 if not run.terminal else 100, int(100 * metrics.step / metrics.total_steps)))
    return 0


def remaining_seconds(run: TrainingRun, *, now: datetime | None = None) -> float | None:
    """Estimated time left from the observed step rate (the provider's own estimate when no rate has
    been observed yet); None when it cannot be estimated."""
    metrics = run.metrics
    if run.terminal:
        return None
    if metrics.step is not None and metrics.total_steps and metrics.steps_per_second:
        return max(0.0, (metrics.total_steps - metrics.step) / metrics.steps_per_second)
    if metrics.estimated_finish is not None:
        return max(0.0, (metrics.estimated_finish - (now or utcnow())).total_seconds())
    return None

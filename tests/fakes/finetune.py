"""FakeFineTuneProvider: the ``FineTuneProvider`` port in memory, for training service unit tests.

Each job follows a *plan*: a list of snapshots it moves through, one per ``get_job`` call (the last one
sticks). Errors can be queued per method (``fail("create_job", TransientProviderError(...))``) and
every call is recorded in ``calls``, so tests assert what the service asked for.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lightning.domain.errors import NotFound, ProviderError
from lightning.domain.training import Hyperparameters, RunEvent, RunMetrics
from lightning.ports.finetune import ProviderJob


@dataclass
class Snapshot:
    """What ``get_job`` answers at one point of a job's life."""

    status: str
    step: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    epoch: int | None = None
    trained_tokens: int | None = None
    error: str | None = None
    at_seconds: float = 0.0  # event time, seconds after the job's creation


def default_plan(n_epochs: int = 3, total_steps: int = 30) -> list[Snapshot]:
    return [
        Snapshot("validating_files"),
        Snapshot("queued"),
        Snapshot("running", step=10, total_steps=total_steps, train_loss=0.9, valid_loss=0.95, at_seconds=60),
        Snapshot(
            "running", step=20, total_steps=total_steps, train_loss=0.5, valid_loss=0.55, at_seconds=120
        ),
        Snapshot(
            "succeeded",
            step=total_steps,
            total_steps=total_steps,
            train_loss=0.318,
            valid_loss=0.342,
            trained_tokens=45230,
            at_seconds=180,
        ),
    ]


@dataclass
class _Job:
    job: ProviderJob
    plan: list[Snapshot]
    position: int = -1
    events: list[RunEvent] = field(default_factory=list)


class FakeFineTuneProvider:
    name = "fake"

    def __init__(self, *, plan: list[Snapshot] | None = None, start: datetime | None = None) -> None:
        self.plan = plan or default_plan()
        self.start = start or datetime(2026, 2, 7, 10, 0, tzinfo=UTC)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._errors: dict[str, list[Exception]] = defaultdict(list)
        self._ids = itertools.count(1)
        self.crash_after_create = False  # create the job, then raise as if the answer was lost

    def fail(self, method: str, *errors: Exception) -> None:
        """Queue errors raised by the next calls of ``method`` (one error per call)."""
        self._errors[method].extend(errors)

    def _enter(self, method: str, **args: Any) -> None:
        self.calls.append((method, args))
        if self._errors[method]:
            raise self._errors[method].pop(0)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def upload_file(self, path: Path) -> str:
        self._enter("upload_file", path=path)
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = path.read_bytes()
        return file_id

    def wait_for_file(self, file_id: str, *, timeout: float = 600.0) -> None:
        self._enter("wait_for_file", file_id=file_id)
        if file_id not in self.files:
            raise ProviderError(f"file {file_id} not found", provider=self.name, status_code=404)

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
        self._enter(
            "create_job",
            base_model=base_model,
            training_file=training_file,
            validation_file=validation_file,
            hyperparameters=hyperparameters,
            suffix=suffix,
            seed=seed,
            idempotency_key=idempotency_key,
        )
        job_id = f"ftjob-{next(self._ids):06d}"
        job = ProviderJob(
            job_id=job_id,
            status="validating_files",
            model=base_model,
            created_at=self.start,
            hyperparameters={"n_epochs": hyperparameters.n_epochs or 3},
            metadata={"lightning_idempotency_key": idempotency_key},
        )
        self.jobs[job_id] = _Job(job=job, plan=list(self.plan))
        if self.crash_after_create:
            self.crash_after_create = False
            raise RuntimeError("simulated crash after the job was created")
        return job

    def find_job(self, idempotency_key: str) -> ProviderJob | None:
        self._enter("find_job", idempotency_key=idempotency_key)
        for entry in self.jobs.values():
            if entry.job.metadata.get("lightning_idempotency_key") == idempotency_key:
                return entry.job
        return None

    def get_job(self, job_id: str) -> ProviderJob:
        self._enter("get_job", job_id=job_id)
        if job_id not in self.jobs:
            raise NotFound("fine-tuning job", job_id)
        entry = self.jobs[job_id]
        if entry.job.status in {"cancelled"}:
            return entry.job
        entry.position = min(entry.position + 1, len(entry.plan) - 1)
        snap = entry.plan[entry.position]
        at = self.start + timedelta(seconds=snap.at_seconds)
        if snap.step is not None:
            entry.events.append(
                RunEvent(
                    created_at=at,
                    message=f"Step {snap.step}/{snap.total_steps}: training loss={snap.train_loss}",
                    type="metrics",
                    data={"step": snap.step, "total_steps": snap.total_steps, "train_loss": snap.train_loss},
                )
            )
        n_epochs = int(entry.job.hyperparameters.get("n_epochs") or 3)
        epoch = snap.epoch
        if epoch is None and snap.step is not None and snap.total_steps:
            epoch = max(1, -(-snap.step * n_epochs // snap.total_steps))
        terminal = snap.status in {"succeeded", "failed", "cancelled"}
        entry.job = entry.job.model_copy(
            update={
                "status": snap.status,
                "error": snap.error,
                "trained_tokens": snap.trained_tokens,
                "fine_tuned_model": f"ft:{entry.job.model}:lightning:{job_id[-6:]}"
                if snap.status == "succeeded"
                else None,
                "finished_at": at if terminal else None,
                "events": list(entry.events),
                "metrics": RunMetrics(
                    step=snap.step,
                    total_steps=snap.total_steps,
                    epoch=epoch,
                    total_epochs=n_epochs,
                    train_loss=snap.train_loss,
                    valid_loss=snap.valid_loss,
                    trained_tokens=snap.trained_tokens,
                ),
            }
        )
        return entry.job

    def cancel_job(self, job_id: str) -> ProviderJob:
        self._enter("cancel_job", job_id=job_id)
        if job_id not in self.jobs:
            raise NotFound("fine-tuning job", job_id)
        entry = self.jobs[job_id]
        if entry.job.status in {"succeeded", "failed", "cancelled"}:
            raise ProviderError(
                f"job {job_id} is already {entry.job.status}", provider=self.name, status_code=400
            )
        entry.job = entry.job.model_copy(update={"status": "cancelled", "finished_at": self.start})
        return entry.job

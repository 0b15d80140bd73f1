"""RunStore: durable fine-tuning runs (SQLite by default, Cosmos ``rl_training_runs`` in Azure).

Implemented by ``lightning.adapters.sqlite.runs.SqliteRunStore`` and ``tests.fakes.runs.InMemoryRunStore``
(``tests/integration/contracts/test_run_store_contract.py`` runs against both); used by
``lightning.services.training``.
"""

from __future__ import annotations

from typing import Protocol

from lightning.domain.training import TrainingRun


class RunStore(Protocol):
    def create_or_get(self, run: TrainingRun) -> tuple[TrainingRun, bool]:
        """Store ``run`` unless a run with the same idempotency key exists; returns (run, created)."""
        ...

    def get(self, run_id: str) -> TrainingRun:
        """``NotFound`` when missing."""
        ...

    def get_by_job_id(self, job_id: str) -> TrainingRun:
        """The run behind a provider job id (``ftjob-…``), or ``NotFound``."""
        ...

    def find_by_key(self, idempotency_key: str) -> TrainingRun | None:
        """The run created with this idempotency key, if any."""
        ...

    def update(self, run: TrainingRun) -> TrainingRun:
        """Write ``run`` if its etag is current (``Conflict`` otherwise; ``NotFound`` if it was never
        created); returns it with the new etag."""
        ...

    def list(self, *, agent_id: str | None = None, limit: int = 50) -> list[TrainingRun]:
        """Newest first."""
        ...

"""InMemoryRunStore: the ``RunStore`` port in memory, for service unit tests.

Same semantics as ``SqliteRunStore`` (``tests/integration/contracts/test_run_store_contract.py`` runs on
both): idempotency-key de-duplication, etag = row version, ``Conflict`` on a stale etag or a job id that
belongs to another run, newest first listing.
"""

from __future__ import annotations

import threading

from lightning.domain.errors import Conflict, NotFound
from lightning.domain.training import TrainingRun


class InMemoryRunStore:
    def __init__(self) -> None:
        self._runs: dict[str, tuple[int, TrainingRun]] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()

    def create_or_get(self, run: TrainingRun) -> tuple[TrainingRun, bool]:
        with self._lock:
            for version, stored in self._runs.values():
                if stored.idempotency_key == run.idempotency_key:
                    return stored.model_copy(update={"etag": str(version)}), False
            if run.id in self._runs:
                raise Conflict(f"training run {run.id} already exists", ident=run.id)
            self._runs[run.id] = (1, run.model_copy(update={"etag": None}))
            self._order.append(run.id)
            return run.model_copy(update={"etag": "1"}), True

    def _load(self, run_id: str) -> TrainingRun:
        version, run = self._runs[run_id]
        return run.model_copy(update={"etag": str(version)})

    def get(self, run_id: str) -> TrainingRun:
        with self._lock:
            if run_id not in self._runs:
                raise NotFound("training run", run_id)
            return self._load(run_id)

    def get_by_job_id(self, job_id: str) -> TrainingRun:
        with self._lock:
            for run_id, (_, run) in self._runs.items():
                if run.job_id == job_id:
                    return self._load(run_id)
        raise NotFound("training job", job_id)

    def find_by_key(self, idempotency_key: str) -> TrainingRun | None:
        with self._lock:
            for run_id, (_, run) in self._runs.items():
                if run.idempotency_key == idempotency_key:
                    return self._load(run_id)
        return None

    def update(self, run: TrainingRun) -> TrainingRun:
        with self._lock:
            if run.id not in self._runs:
                raise NotFound("training run", run.id)
            version, _ = self._runs[run.id]
            if run.etag is not None and run.etag != str(version):
                raise Conflict(f"training run {run.id} changed since it was read", ident=run.id)
            if run.job_id is not None and any(
                other.job_id == run.job_id
                for other_id, (_, other) in self._runs.items()
                if other_id != run.id
            ):
                raise Conflict(f"job {run.job_id} already belongs to another training run", ident=run.job_id)
            self._runs[run.id] = (version + 1, run.model_copy(update={"etag": None}))
            return run.model_copy(update={"etag": str(version + 1)})

    def list(self, *, agent_id: str | None = None, limit: int = 50) -> list[TrainingRun]:
        with self._lock:
            runs = [self._load(run_id) for run_id in self._order]
        runs = [run for run in runs if agent_id is None or run.agent_id == agent_id]
        # newest first; insertion order breaks ties like SQLite's rowid does
        indexed = sorted(enumerate(runs), key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
        return [run for _, run in indexed][:limit]

"""SqliteRunStore: the ``RunStore`` port on the shared SQLite file (component ``runs``).

Built by ``Container.runs`` when ``LIGHTNING_STORE`` is ``sqlite:///…``. A run is one row: indexed
columns for lookups (idempotency key, job id, agent) and the whole ``TrainingRun`` as JSON. The etag is a
row version bumped on every write, so concurrent pollers cannot overwrite each other's progress.
"""

from __future__ import annotations

import sqlite3

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.training import TrainingRun

COMPONENT = "runs"

MIGRATIONS = [
    """
    CREATE TABLE training_runs (
        id              TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        agent_id        TEXT NOT NULL,
        job_id          TEXT,
        state           TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        version         INTEGER NOT NULL,
        body            TEXT NOT NULL
    );
    CREATE UNIQUE INDEX training_runs_job ON training_runs(job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX training_runs_agent ON training_runs(agent_id, created_at);
    """,
]


class SqliteRunStore(SqliteComponent):
    """Training runs in SQLite; optimistic concurrency through a row version."""

    component = COMPONENT
    migrations = MIGRATIONS

    @staticmethod
    def _load(row: sqlite3.Row) -> TrainingRun:
        run = TrainingRun.model_validate_json(row["body"])
        return run.model_copy(update={"etag": str(row["version"])})

    def create_or_get(self, run: TrainingRun) -> tuple[TrainingRun, bool]:
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT * FROM training_runs WHERE idempotency_key = ?", (run.idempotency_key,)
            ).fetchone()
            if row is not None:
                return self._load(row), False
            try:
                tx.execute(
                    "INSERT INTO training_runs(id, idempotency_key, agent_id, job_id, state, created_at,"
                    " version, body) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                    (
                        run.id,
                        run.idempotency_key,
                        run.agent_id,
                        run.job_id,
                        run.state,
                        run.created_at.isoformat(),
                        run.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise Conflict(f"training run {run.id} already exists", ident=run.id) from error
        return run.model_copy(update={"etag": "1"}), True

    def get(self, run_id: str) -> TrainingRun:
        row = self._db.connection().execute("SELECT * FROM training_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound("training run", run_id, "list runs with list-training-runs")
        return self._load(row)

    def get_by_job_id(self, job_id: str) -> TrainingRun:
        row = (
            self._db.connection()
            .execute("SELECT * FROM training_runs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound("training job", job_id, "list runs with list-training-runs")
        return self._load(row)

    def find_by_key(self, idempotency_key: str) -> TrainingRun | None:
        row = (
            self._db.connection()
            .execute("SELECT * FROM training_runs WHERE idempotency_key = ?", (idempotency_key,))
            .fetchone()
        )
        return None if row is None else self._load(row)

    def update(self, run: TrainingRun) -> TrainingRun:
        with self._db.transaction() as tx:
            row = tx.execute("SELECT version FROM training_runs WHERE id = ?", (run.id,)).fetchone()
            if row is None:
                raise NotFound("training run", run.id)
            version = int(row["version"])
            if run.etag is not None and run.etag != str(version):
                raise Conflict(
                    f"training run {run.id} changed since it was read (etag {run.etag}, now {version}); "
                    "read it again",
                    ident=run.id,
                )
            try:
                tx.execute(
                    "UPDATE training_runs SET job_id = ?, state = ?, version = ?, body = ? WHERE id = ?",
                    (run.job_id, run.state, version + 1, run.model_dump_json(), run.id),
                )
            except sqlite3.IntegrityError as error:
                raise Conflict(
                    f"job {run.job_id} already belongs to another training run", ident=run.job_id
                ) from error
        return run.model_copy(update={"etag": str(version + 1)})

    def list(self, *, agent_id: str | None = None, limit: int = 50) -> list[TrainingRun]:
        conn = self._db.connection()
        if agent_id is None:
            rows = conn.execute(
                "SELECT * FROM training_runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM training_runs WHERE agent_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (agent_id, limit),
            ).fetchall()
        return [self._load(row) for row in rows]

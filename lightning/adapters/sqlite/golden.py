"""SqliteGoldenStore: the ``GoldenStore`` port on the shared SQLite file (component ``golden``).

Built by ``Container.golden`` when ``LIGHTNING_STORE`` is ``sqlite:///…``. One row per (agent, example
id): the ``GoldenExample`` as JSON plus the columns lookups and the listing order need. ``put`` is an
upsert (the latest answer to a request wins); the listing is oldest first by (created_at, id), so an
evaluation replays the set in the same order every time. The etag is a row version bumped on every write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.adapters.sqlite.episodes import to_micros
from lightning.domain.errors import NotFound
from lightning.domain.golden import GoldenExample

COMPONENT = "golden"

MIGRATIONS = [
    """
    CREATE TABLE golden (
        agent_id    TEXT NOT NULL,
        id          TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        row_version INTEGER NOT NULL DEFAULT 1,
        body        TEXT NOT NULL,
        PRIMARY KEY (agent_id, id)
    );
    CREATE INDEX ix_golden_agent_created ON golden(agent_id, created_us, id);
    """,
]


def _not_found(agent_id: str, example_id: str) -> NotFound:
    return NotFound(
        "golden example", example_id, hint=f"see `lightning-loop list-golden --agent-id {agent_id}`"
    )


class SqliteGoldenStore(SqliteComponent):
    """Golden examples in SQLite, one row per (agent, id)."""

    component = COMPONENT
    migrations = MIGRATIONS

    @staticmethod
    def _load(row: sqlite3.Row) -> GoldenExample:
        example = GoldenExample.model_validate_json(row["body"])
        return example.model_copy(update={"etag": str(row["row_version"])})

    def put(self, examples: Sequence[GoldenExample]) -> int:
        latest = {(e.agent_id, e.id): e for e in examples}  # within one call too, the last one wins
        if not latest:
            return 0
        with self._db.transaction() as tx:
            tx.executemany(
                "INSERT INTO golden(agent_id, id, created_us, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(agent_id, id) DO UPDATE SET created_us = excluded.created_us, "
                "body = excluded.body, row_version = row_version + 1",
                [(e.agent_id, e.id, to_micros(e.created_at), e.model_dump_json()) for e in latest.values()],
            )
        return len(latest)

    def get(self, agent_id: str, example_id: str) -> GoldenExample:
        row = (
            self._db.connection()
            .execute("SELECT * FROM golden WHERE agent_id = ? AND id = ?", (agent_id, example_id))
            .fetchone()
        )
        if row is None:
            raise _not_found(agent_id, example_id)
        return self._load(row)

    def list(self, agent_id: str, *, limit: int | None = None) -> list[GoldenExample]:
        rows = (
            self._db.connection()
            .execute(
                "SELECT * FROM golden WHERE agent_id = ? ORDER BY created_us, id LIMIT ?",
                (agent_id, -1 if limit is None else limit),
            )
            .fetchall()
        )
        return [self._load(row) for row in rows]

    def count(self, agent_id: str) -> int:
        row = self._db.connection().execute("SELECT COUNT(*) FROM golden WHERE agent_id = ?", (agent_id,))
        return int(row.fetchone()[0])

    def delete(self, agent_id: str, example_id: str) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute("DELETE FROM golden WHERE agent_id = ? AND id = ?", (agent_id, example_id))
        if cursor.rowcount != 1:
            raise _not_found(agent_id, example_id)


__all__ = ["MIGRATIONS", "SqliteGoldenStore"]

"""SqliteCursorStore: where the local loop remembers how far it read the episode change sequence."""

from __future__ import annotations

from pathlib import Path

from lightning.adapters.sqlite.db import SqliteDatabase, shared_database

_MIGRATIONS = ["CREATE TABLE cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"]


class SqliteCursorStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        db.migrate("cursors", _MIGRATIONS)

    @classmethod
    def at(cls, path: Path | str) -> SqliteCursorStore:
        return cls(shared_database(path))

    def get(self, name: str) -> int:
        row = self._db.connection().execute("SELECT position FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set(self, name: str, position: int) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO cursors(name, position) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

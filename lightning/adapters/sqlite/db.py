"""SQLite plumbing shared by the embedded adapters: connections, transactions, migrations.

Every adapter (episodes, datasets, runs, models, queue) owns a *component* with
its own ordered list of migrations; ``schema_versions`` records how far each
component has been migrated, so components evolve independently in one file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
)
"""


class SqliteDatabase:
    """One SQLite file; a connection per thread; explicit ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrated: set[str] = set()
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; taken up front (IMMEDIATE) so concurrent writers queue instead of failing."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the not-yet-applied migrations of ``component`` in order; returns the schema version."""
        with self._lock:
            if component in self._migrated:
                return len(migrations)
            conn = self.connection()
            conn.execute(_SCHEMA_TABLE)
            with self.transaction() as tx:
                row = tx.execute(
                    "SELECT version FROM schema_versions WHERE component = ?", (component,)
                ).fetchone()
                current = int(row[0]) if row else 0
                if current > len(migrations):
                    raise RuntimeError(
                        f"database {self.path} has {component} schema v{current}, newer than this code "
                        f"(v{len(migrations)}): upgrade lightning-loop"
                    )
                for sql in migrations[current:]:
                    for statement in _statements(sql):
                        tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, len(migrations)),
                )
            self._migrated.add(component)
            return len(migrations)

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _statements(script: str) -> list[str]:
    """Split a migration script on ';' at line ends (our migrations hold no ';' inside literals)."""
    return [part.strip() for part in script.split(";\n") if part.strip().rstrip(";").strip()]


_databases: dict[Path, SqliteDatabase] = {}
_databases_lock = threading.Lock()


def shared_database(path: Path | str) -> SqliteDatabase:
    """One ``SqliteDatabase`` per file per process, so adapters on the same file share connections."""
    key = Path(path).resolve()
    with _databases_lock:
        db = _databases.get(key)
        if db is None:
            db = _databases[key] = SqliteDatabase(key)
        return db


class SqliteComponent:
    """Base of the stores that keep one component (their own tables and migrations) in the main file."""

    component: ClassVar[str]
    migrations: ClassVar[Sequence[str]]

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        db.migrate(self.component, self.migrations)

    @classmethod
    def at(cls, path: Path | str) -> Self:
        """A store on the file ``path``, sharing its connections with the other stores on that file."""
        return cls(shared_database(path))

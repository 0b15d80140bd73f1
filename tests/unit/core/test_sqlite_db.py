"""Per-component migrations: applied once, in order, remembered across reopenings."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.adapters.sqlite.db import SqliteDatabase

V1 = "CREATE TABLE things (id TEXT PRIMARY KEY);\nCREATE INDEX things_id ON things(id)"
V2 = "ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0"


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    assert SqliteDatabase(path).migrate("things", [V1]) == 1
    db = SqliteDatabase(path)
    assert db.migrate("things", [V1, V2]) == 2
    db.connection().execute("INSERT INTO things(id, size) VALUES ('a', 3)")
    assert SqliteDatabase(path).migrate("things", [V1, V2]) == 2  # reopen: nothing re-applied
    rows = (
        SqliteDatabase(path).connection().execute("SELECT component, version FROM schema_versions").fetchall()
    )
    assert [tuple(row) for row in rows] == [("things", 2)]


def test_newer_schema_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    SqliteDatabase(path).migrate("things", [V1, V2])
    with pytest.raises(RuntimeError, match="newer than this code"):
        SqliteDatabase(path).migrate("things", [V1])


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "db.sqlite")
    db.migrate("things", [V1])

    def insert_then_fail() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO things(id) VALUES ('x')")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        insert_then_fail()
    assert db.connection().execute("SELECT COUNT(*) FROM things").fetchone()[0] == 0

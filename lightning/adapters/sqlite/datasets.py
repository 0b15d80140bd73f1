"""SqliteDatasetStore: dataset manifests in the embedded SQLite file (component ``datasets``).

Built by the Container (``SqliteDatasetStore.at(path)``). One row per dataset name:
the manifest JSON without its episode id lists (``doc``), the id lists in their own
column (they can hold millions of ids), and the columns listings sort and filter on.
``put`` is the commit point of a build: a name maps to one ``content_sha256``;
re-putting the same content returns the stored manifest, other content is a
``Conflict`` unless ``overwrite``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import format_timestamp
from lightning.domain.errors import Conflict, NotFound

COMPONENT = "datasets"

MIGRATIONS: list[str] = [
    # v1: one row per dataset name.
    """
    CREATE TABLE datasets (
        name           TEXT PRIMARY KEY,
        agent_id       TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        version        INTEGER NOT NULL DEFAULT 1,
        doc            TEXT NOT NULL,
        episode_ids    TEXT NOT NULL
    );
    CREATE INDEX ix_datasets_agent_created ON datasets(agent_id, created_at);
    CREATE INDEX ix_datasets_created ON datasets(created_at)
    """,
]

_IDS = ("episode_ids", "validation_episode_ids")


def _to_row(manifest: DatasetManifest) -> tuple[str, str]:
    doc = manifest.model_dump_json(exclude=set(_IDS))
    ids = json.dumps({key: getattr(manifest, key) for key in _IDS}, separators=(",", ":"))
    return doc, ids


def _from_row(row: sqlite3.Row | tuple[Any, ...]) -> DatasetManifest:
    data = json.loads(row[0])
    data.update(json.loads(row[1]))
    manifest = DatasetManifest.model_validate(data)
    manifest.etag = str(row[2])
    return manifest


class SqliteDatasetStore(SqliteComponent):
    """DatasetStore over one SQLite file (``LIGHTNING_STORE=sqlite:///PATH``)."""

    component = COMPONENT
    migrations = MIGRATIONS

    def find(self, name: str) -> DatasetManifest | None:
        row = (
            self._db.connection()
            .execute("SELECT doc, episode_ids, version FROM datasets WHERE name = ?", (name,))
            .fetchone()
        )
        return _from_row(row) if row is not None else None

    def get(self, name: str) -> DatasetManifest:
        found = self.find(name)
        if found is None:
            raise NotFound("dataset", name, hint="list them with `lightning-loop list-datasets`")
        return found

    def put(self, manifest: DatasetManifest, *, overwrite: bool = False) -> DatasetManifest:
        doc, ids = _to_row(manifest)
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT content_sha256, version, created_at FROM datasets WHERE name = ?", (manifest.name,)
            ).fetchone()
            if row is not None and row[0] == manifest.content_sha256:
                pass  # same content: the stored manifest stands (returned below)
            elif row is not None and not overwrite:
                raise Conflict(
                    f"dataset {manifest.name!r} already exists with different content (built {row[2]}); "
                    "choose another name or pass --overwrite",
                    ident=manifest.name,
                )
            else:
                tx.execute(
                    "INSERT INTO datasets(name, agent_id, created_at, content_sha256, version, doc, episode_ids) "
                    "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT(name) DO UPDATE SET agent_id = excluded.agent_id, "
                    "created_at = excluded.created_at, content_sha256 = excluded.content_sha256, "
                    "version = datasets.version + 1, doc = excluded.doc, episode_ids = excluded.episode_ids",
                    (
                        manifest.name,
                        manifest.agent_id,
                        format_timestamp(manifest.created_at),
                        manifest.content_sha256,
                        doc,
                        ids,
                    ),
                )
        return self.get(manifest.name)

    def list(self, *, agent_id: str | None = None) -> list[DatasetManifest]:
        sql = "SELECT doc, episode_ids, version FROM datasets"
        params: tuple[str, ...] = ()
        if agent_id is not None:
            sql += " WHERE agent_id = ?"
            params = (agent_id,)
        sql += " ORDER BY created_at DESC, name DESC"
        return [_from_row(row) for row in self._db.connection().execute(sql, params).fetchall()]

    def latest(self, agent_id: str) -> DatasetManifest | None:
        row = (
            self._db.connection()
            .execute(
                "SELECT doc, episode_ids, version FROM datasets WHERE agent_id = ? "
                "ORDER BY created_at DESC, name DESC LIMIT 1",
                (agent_id,),
            )
            .fetchone()
        )
        return _from_row(row) if row is not None else None

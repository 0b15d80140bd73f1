"""SqliteModelRegistry: the ``ModelRegistry`` port on the shared SQLite file (component ``models``).

Built by ``Container.models`` when ``LIGHTNING_STORE`` is ``sqlite:///…``. One row per model version:
indexed columns for lookups and the whole ``ModelVersion`` as JSON. "Exactly one active version per
agent" is enforced by the database itself — a partial unique index on ``agent_id WHERE active = 1`` —
so two promoters racing can never both win. The etag is a row version bumped on every write.
"""

from __future__ import annotations

import sqlite3

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.model import ModelVersion

COMPONENT = "models"

MIGRATIONS = [
    """
    CREATE TABLE model_versions (
        id              TEXT PRIMARY KEY,
        agent_id        TEXT NOT NULL,
        version         INTEGER NOT NULL,
        model_name      TEXT NOT NULL,
        deployment_name TEXT,
        status          TEXT NOT NULL,
        active          INTEGER NOT NULL DEFAULT 0,
        row_version     INTEGER NOT NULL,
        body            TEXT NOT NULL,
        UNIQUE (agent_id, version),
        UNIQUE (agent_id, model_name)
    );
    CREATE UNIQUE INDEX model_versions_one_active ON model_versions(agent_id) WHERE active = 1;
    CREATE INDEX model_versions_deployment ON model_versions(agent_id, deployment_name);
    """,
]


def _not_found(agent_id: str, key: str) -> NotFound:
    return NotFound(
        "model version", f"{agent_id}/{key}", hint=f"see `lightning-loop list-models --agent-id {agent_id}`"
    )


class SqliteModelRegistry(SqliteComponent):
    """Model versions in SQLite; one active per agent guaranteed by a partial unique index."""

    component = COMPONENT
    migrations = MIGRATIONS

    @staticmethod
    def _load(row: sqlite3.Row) -> ModelVersion:
        version = ModelVersion.model_validate_json(row["body"])
        return version.model_copy(update={"etag": str(row["row_version"]), "active": bool(row["active"])})

    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT * FROM model_versions WHERE agent_id = ? AND model_name = ?",
                (version.agent_id, version.model_name),
            ).fetchone()
            if row is not None:
                return self._load(row), False
            try:
                tx.execute(
                    "INSERT INTO model_versions(id, agent_id, version, model_name, deployment_name, status,"
                    " active, row_version, body) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                    (
                        version.id,
                        version.agent_id,
                        version.version,
                        version.model_name,
                        version.deployment_name,
                        version.status,
                        int(version.active),
                        version.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise Conflict(
                    f"model version {version.id} (v{version.version}) already exists or {version.agent_id} "
                    "already has an active version; retry with the next version number",
                    ident=version.id,
                ) from error
        return version.model_copy(update={"etag": "1"}), True

    def get(self, agent_id: str, model_name_or_version: str) -> ModelVersion:
        key = model_name_or_version
        conn = self._db.connection()
        queries: list[tuple[str, tuple[object, ...]]] = [("id = ?", (key,))]
        number = key[1:] if key[:1] in ("v", "V") else key
        if number.isdigit():
            queries.append(("version = ?", (int(number),)))
        queries += [("model_name = ?", (key,)), ("deployment_name = ?", (key,))]
        for where, params in queries:
            row = conn.execute(
                f"SELECT * FROM model_versions WHERE agent_id = ? AND {where} ORDER BY version DESC LIMIT 1",
                (agent_id, *params),
            ).fetchone()
            if row is not None:
                return self._load(row)
        raise _not_found(agent_id, key)

    def list(self, agent_id: str) -> list[ModelVersion]:
        rows = (
            self._db.connection()
            .execute("SELECT * FROM model_versions WHERE agent_id = ? ORDER BY version DESC", (agent_id,))
            .fetchall()
        )
        return [self._load(row) for row in rows]

    def active(self, agent_id: str) -> ModelVersion | None:
        row = (
            self._db.connection()
            .execute("SELECT * FROM model_versions WHERE agent_id = ? AND active = 1", (agent_id,))
            .fetchone()
        )
        return self._load(row) if row is not None else None

    def update(self, version: ModelVersion) -> ModelVersion:
        with self._db.transaction() as tx:
            row = tx.execute("SELECT row_version FROM model_versions WHERE id = ?", (version.id,)).fetchone()
            if row is None:
                raise NotFound("model version", version.id)
            if version.etag is not None and version.etag != str(row["row_version"]):
                raise Conflict(
                    f"model version {version.id} changed since it was read; read it again and retry",
                    ident=version.id,
                )
            new_row_version = int(row["row_version"]) + 1
            try:
                tx.execute(
                    "UPDATE model_versions SET deployment_name = ?, status = ?, active = ?, row_version = ?,"
                    " body = ? WHERE id = ?",
                    (
                        version.deployment_name,
                        version.status,
                        int(version.active),
                        new_row_version,
                        version.model_dump_json(),
                        version.id,
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise Conflict(
                    f"{version.agent_id} already has an active version; activate {version.id} instead",
                    ident=version.id,
                ) from error
        return version.model_copy(update={"etag": str(new_row_version)})

    def activate(self, agent_id: str, version_id: str) -> ModelVersion:
        target = self.get(agent_id, version_id)
        if target.active:
            return target
        now = utcnow()
        with self._db.transaction() as tx:
            # Retire the current active one first: the partial unique index would refuse two at once.
            for row in tx.execute(
                "SELECT * FROM model_versions WHERE agent_id = ? AND active = 1", (agent_id,)
            ).fetchall():
                old = self._load(row).model_copy(
                    update={"active": False, "status": "retired", "updated_at": now}
                )
                tx.execute(
                    "UPDATE model_versions SET active = 0, status = 'retired', row_version = row_version + 1,"
                    " body = ? WHERE id = ?",
                    (old.model_dump_json(), old.id),
                )
            row = tx.execute("SELECT * FROM model_versions WHERE id = ?", (target.id,)).fetchone()
            if row is None:
                raise _not_found(agent_id, version_id)
            new = self._load(row).model_copy(
                update={"active": True, "status": "active", "error": None, "updated_at": now}
            )
            tx.execute(
                "UPDATE model_versions SET active = 1, status = 'active', row_version = row_version + 1,"
                " body = ? WHERE id = ?",
                (new.model_dump_json(), new.id),
            )
            version_row = tx.execute(
                "SELECT row_version FROM model_versions WHERE id = ?", (new.id,)
            ).fetchone()
        return new.model_copy(update={"etag": str(version_row["row_version"])})

    def next_version(self, agent_id: str) -> int:
        row = (
            self._db.connection()
            .execute("SELECT MAX(version) FROM model_versions WHERE agent_id = ?", (agent_id,))
            .fetchone()
        )
        return int(row[0] or 0) + 1

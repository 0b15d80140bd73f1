"""SqliteEpisodeStore: the embedded EpisodeStore (one SQLite file, WAL), built by the Container.

Schema (component ``episodes``, versioned migrations): one row per episode holding
the episode JSON (``doc``) plus the columns the queries filter and sort on. Label
writes touch only the label columns (``label`` JSON, ``reward``, ``labeled``,
``label_source``) so they never re-serialize the whole episode; reads overlay
those columns on the stored document.

* ``add`` is insert-if-absent (stable ids: re-imports and replays never duplicate),
  one ``executemany`` in one transaction.
* ``version`` is the row version, exposed as the episode's etag; label writes with
  a stale ``expected_etag`` lose (``Conflict``).
* ``seq`` is a monotonic change sequence drawn from a counter row that survives
  restarts and is never reused: every insert and label write takes the next value
  inside the write transaction, so a reader of ``changes_since(cursor)`` sees
  changes in commit order and never skips or repeats one (the local stand-in for
  the Cosmos change feed; an episode changed twice appears once, at its newest).
* ``ts`` is the timestamp in integer microseconds since the epoch (exact ordering).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.domain.episode import Episode, Label, as_utc
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import ChangeBatch, EpisodeQuery, LabelWrite, LabelWriteOutcome

COMPONENT = "episodes"

MIGRATIONS: list[str] = [
    # v1: episodes + the change-sequence counter + the indexes the queries need.
    """
    CREATE TABLE episodes (
        id            TEXT PRIMARY KEY,
        agent_id      TEXT NOT NULL,
        ts            INTEGER NOT NULL,
        labeled       INTEGER NOT NULL DEFAULT 0,
        label_source  TEXT,
        model_version TEXT,
        reward        REAL,
        version       INTEGER NOT NULL DEFAULT 1,
        seq           INTEGER NOT NULL,
        doc           TEXT NOT NULL,
        label         TEXT
    );
    CREATE TABLE episode_counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO episode_counters(name, value) VALUES ('seq', 0);
    CREATE INDEX ix_episodes_agent_ts ON episodes(agent_id, ts, id);
    CREATE INDEX ix_episodes_agent_labeled_ts ON episodes(agent_id, labeled, ts, id);
    CREATE INDEX ix_episodes_ts ON episodes(ts, id);
    CREATE UNIQUE INDEX ix_episodes_seq ON episodes(seq);
    """,
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_PAGE = 500
_COLUMNS = "id, doc, label, reward, labeled, version, seq, ts"


def to_micros(value: datetime) -> int:
    return (as_utc(value) - _EPOCH) // _MICRO


_LABEL_FIELDS = {"label", "reward", "labeled"}


def _row_to_episode(row: sqlite3.Row | tuple[Any, ...]) -> Episode:
    """One validation per row: the label columns are spliced into the stored document's JSON.

    ``doc`` never holds reward/labeled/label (they live in columns, which label writes update),
    so no key is duplicated; ``etag`` is the row version.
    """
    doc: str = row[1]
    reward = "null" if row[3] is None else repr(float(row[3]))
    label = "null" if row[2] is None else row[2]
    labeled = "true" if row[4] else "false"
    text = f'{doc[:-1]},"reward":{reward},"labeled":{labeled},"label":{label},"etag":"{row[5]}"}}'
    return Episode.model_validate_json(text)


class SqliteEpisodeStore(SqliteComponent):
    """EpisodeStore over one SQLite file (``settings.sqlite_path``)."""

    component = COMPONENT
    migrations = MIGRATIONS

    # --- writes ------------------------------------------------------------------------------
    @staticmethod
    def _take_seq(conn: sqlite3.Connection, n: int) -> int:
        """Reserve ``n`` sequence numbers; returns the first. Caller holds the write transaction."""
        row = conn.execute(
            "UPDATE episode_counters SET value = value + ? WHERE name = 'seq' RETURNING value", (n,)
        ).fetchone()
        return int(row[0]) - n + 1

    def add(self, episodes: Sequence[Episode]) -> int:
        if not episodes:
            return 0
        # Duplicates inside one batch: the first wins, like a replay of an already stored id.
        unique: dict[str, Episode] = {}
        for episode in episodes:
            unique.setdefault(episode.id, episode)
        batch = list(unique.values())
        with self._db.transaction() as conn:
            first = self._take_seq(conn, len(batch))
            rows = [
                (
                    e.id,
                    e.agent_id,
                    to_micros(e.timestamp),
                    1 if e.labeled else 0,
                    e.label.source if e.label is not None else None,
                    e.model_version,
                    e.reward,
                    first + i,
                    e.model_dump_json(exclude=_LABEL_FIELDS),
                    e.label.model_dump_json() if e.label is not None else None,
                )
                for i, e in enumerate(batch)
            ]
            cursor = conn.executemany(
                "INSERT INTO episodes(id, agent_id, ts, labeled, label_source, model_version, reward, "
                "seq, doc, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                rows,
            )
            return max(cursor.rowcount, 0)

    def _write_label(
        self,
        conn: sqlite3.Connection,
        seq: int,
        episode_id: str,
        label: Label,
        agent_id: str | None,
        expected_etag: str | None,
    ) -> str:
        """One guarded label update; returns ``written``, ``conflict`` or ``missing``."""
        sql = (
            "UPDATE episodes SET label = ?, reward = ?, labeled = 1, label_source = ?, "
            "version = version + 1, seq = ? WHERE id = ?"
        )
        params: list[Any] = [label.model_dump_json(), label.score, label.source, seq, episode_id]
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        if expected_etag is not None:
            try:
                version = int(expected_etag)
            except ValueError:
                version = -1  # an etag we never issued is stale by definition
            sql += " AND version = ?"
            params.append(version)
        if conn.execute(sql, params).rowcount == 1:
            return "written"
        exists_sql = "SELECT 1 FROM episodes WHERE id = ?" + (" AND agent_id = ?" if agent_id else "")
        exists_params = [episode_id] + ([agent_id] if agent_id else [])
        return "conflict" if conn.execute(exists_sql, exists_params).fetchone() else "missing"

    def save_label(
        self, episode_id: str, label: Label, *, agent_id: str | None = None, expected_etag: str | None = None
    ) -> Episode:
        with self._db.transaction() as conn:
            seq = self._take_seq(conn, 1)
            outcome = self._write_label(conn, seq, episode_id, label, agent_id, expected_etag)
            if outcome == "written":
                row = conn.execute(f"SELECT {_COLUMNS} FROM episodes WHERE id = ?", (episode_id,)).fetchone()
                return _row_to_episode(row)
        if outcome == "missing":
            raise NotFound("episode", episode_id, hint="list episodes with `lightning-loop list-episodes`")
        raise Conflict(
            f"episode {episode_id!r} changed since it was read (etag {expected_etag} is stale); "
            "read it again and retry",
            ident=episode_id,
        )

    def save_labels(self, writes: Sequence[LabelWrite]) -> LabelWriteOutcome:
        outcome = LabelWriteOutcome()
        if not writes:
            return outcome
        with self._db.transaction() as conn:
            first = self._take_seq(conn, len(writes))
            if self._write_all_or_nothing(conn, first, writes):
                outcome.written.extend(write.episode_id for write in writes)
                return outcome
            for i, write in enumerate(writes):
                result = self._write_label(
                    conn, first + i, write.episode_id, write.label, write.agent_id, write.expected_etag
                )
                getattr(outcome, "conflicts" if result == "conflict" else result).append(write.episode_id)
        return outcome

    @staticmethod
    def _write_all_or_nothing(conn: sqlite3.Connection, first: int, writes: Sequence[LabelWrite]) -> bool:
        """Fast path: one executemany when every write is guarded (the auto-labeling case).

        Inside a savepoint: if any row did not match (stale etag, missing id) it is rolled back
        and the caller redoes the writes one by one to say which failed.
        """
        if any(
            w.expected_etag is None or not w.expected_etag.isdigit() or w.agent_id is None for w in writes
        ):
            return False
        conn.execute("SAVEPOINT label_batch")
        cursor = conn.executemany(
            "UPDATE episodes SET label = ?, reward = ?, labeled = 1, label_source = ?, "
            "version = version + 1, seq = ? WHERE id = ? AND agent_id = ? AND version = ?",
            [
                (
                    w.label.model_dump_json(),
                    w.label.score,
                    w.label.source,
                    first + i,
                    w.episode_id,
                    w.agent_id,
                    int(w.expected_etag),  # type: ignore[arg-type]
                )
                for i, w in enumerate(writes)
            ],
        )
        if cursor.rowcount == len(writes) and len({w.episode_id for w in writes}) == len(writes):
            conn.execute("RELEASE label_batch")
            return True
        conn.execute("ROLLBACK TO label_batch")
        conn.execute("RELEASE label_batch")
        return False

    # --- reads -------------------------------------------------------------------------------
    def get(self, episode_id: str, *, agent_id: str | None = None) -> Episode:
        sql = f"SELECT {_COLUMNS} FROM episodes WHERE id = ?"
        params: list[Any] = [episode_id]
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        row = self._db.connection().execute(sql, params).fetchone()
        if row is None:
            raise NotFound("episode", episode_id, hint="list episodes with `lightning-loop list-episodes`")
        return _row_to_episode(row)

    @staticmethod
    def _where(query: EpisodeQuery) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.agent_id is not None:
            clauses.append("agent_id = ?")
            params.append(query.agent_id)
        if query.labeled is not None:
            clauses.append("labeled = ?")
            params.append(1 if query.labeled else 0)
        if query.since is not None:
            clauses.append("ts >= ?")
            params.append(to_micros(query.since))
        if query.until is not None:
            clauses.append("ts < ?")
            params.append(to_micros(query.until))
        if query.model_version is not None:
            clauses.append("model_version = ?")
            params.append(query.model_version)
        if query.min_reward is not None:
            clauses.append("reward >= ?")
            params.append(query.min_reward)
        return clauses, params

    def query(self, query: EpisodeQuery) -> Iterator[Episode]:
        """Keyset-paged over (ts, id): no statement stays open between pages, so callers may write
        (e.g. label what they read) while iterating."""
        clauses, params = self._where(query)
        newest = query.order == "newest"
        direction = "DESC" if newest else "ASC"
        remaining = query.limit
        after: tuple[int, str] | None = None
        conn = self._db.connection()
        while remaining is None or remaining > 0:
            page = _PAGE if remaining is None else min(_PAGE, remaining)
            where = list(clauses)
            page_params = list(params)
            if after is not None:
                where.append("(ts, id) < (?, ?)" if newest else "(ts, id) > (?, ?)")
                page_params.extend(after)
            sql = f"SELECT {_COLUMNS} FROM episodes"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += f" ORDER BY ts {direction}, id {direction} LIMIT ?"
            rows = conn.execute(sql, [*page_params, page]).fetchall()
            for row in rows:
                yield _row_to_episode(row)
            if len(rows) < page:
                return
            after = (rows[-1][7], rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    def count(self, query: EpisodeQuery) -> int:
        clauses, params = self._where(query)
        sql = "SELECT COUNT(*) FROM episodes"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        total = int(self._db.connection().execute(sql, params).fetchone()[0])
        return min(total, query.limit) if query.limit is not None else total

    def changes_since(self, cursor: int, *, limit: int = 1000) -> ChangeBatch:
        rows = (
            self._db.connection()
            .execute(
                f"SELECT {_COLUMNS} FROM episodes WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, max(limit, 1))
            )
            .fetchall()
        )
        episodes = [_row_to_episode(row) for row in rows]
        return ChangeBatch(episodes=episodes, cursor=int(rows[-1][6]) if rows else cursor)


__all__ = ["MIGRATIONS", "SqliteEpisodeStore"]

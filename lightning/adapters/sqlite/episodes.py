"""SqliteEpisodeStore: the embedded EpisodeStore (one SQLite file, WAL), built by the Container.

Schema (component ``episodes``, versioned migrations): one row per episode holding
the episode JSON (``doc``) plus the columns the queries filter and sort on. Label
writes touch only the label columns (``labels`` history JSON, ``reward``,
``labeled``, ``label_source``, ``human``, ``corrected``, ``review_priority``) so
they never re-serialize the whole episode; reads overlay those columns on the
stored document, which never holds label fields. The history is stored once: the
effective label is the domain's ``effective_label(labels)``, computed on read. The
``label`` column holds only the label of a row labeled before schema v2 (with
``labels = '[]'``): its history is that one label — the domain reads old documents
the same way — until its next label write moves it into ``labels``.

* ``add`` is insert-if-absent (stable ids: re-imports and replays never duplicate),
  one ``executemany`` in one transaction; an imported ``labels`` history is kept and
  the derived columns are computed from it with the domain's rules.
* ``version`` is the row version, exposed as the episode's etag; label writes with
  a stale ``expected_etag`` lose (``Conflict``): the ``UPDATE … WHERE version = ?``
  is the check, inside a ``BEGIN IMMEDIATE`` transaction.
* Label writes append to the history (``Episode.with_label``). An auto label is one
  SQL statement (the label's JSON concatenated onto ``labels``; ``CASE WHEN human``
  keeps a person's reward and priority) so auto-labeling stays a single
  ``executemany``; only a history already holding ``MAX_AUTO_LABELS`` entries calls
  the domain's ``append_label`` (a registered SQL function) to drop the oldest auto
  label. A human label is rare and needs the episode's action (``corrected``): it is
  read, applied with ``Episode.with_label`` and written back in the same transaction.
* ``review_priority`` is ``review_priority(effective label)`` and ``human`` /
  ``corrected`` follow the effective label: ``ix_episodes_review`` (agent, human,
  priority, newest) answers ``order="review"`` with ``human_labeled=False`` straight
  off the index.
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
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from lightning.adapters.sqlite.db import SqliteComponent
from lightning.domain.episode import (
    MAX_AUTO_LABELS,
    Episode,
    Label,
    append_label,
    effective_label,
    is_correction,
    review_priority,
)
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import ChangeBatch, EpisodeQuery, LabelWrite, LabelWriteOutcome

COMPONENT = "episodes"

# ``review_priority`` (lightning/domain/episode.py) of a v1 row's auto label, in SQL so that opening a
# database of a million episodes migrates in seconds; the v2 test checks it against the domain function.
# json_extract rather than ->/->> so that SQLite 3.31 (Ubuntu 20.04's) runs the migration too.
_V1_AUTO_PRIORITY = """round(min(1.0,
        (CASE WHEN json_extract(label, '$.score') >= 0.4 AND json_extract(label, '$.score') < 0.9
              THEN 0.35 * (1.0 - abs(json_extract(label, '$.score') - 0.7) / 0.3) ELSE 0.0 END)
      + (CASE WHEN json_extract(label, '$.tool_correct') = 0 THEN 0.25 ELSE 0.0 END)
      + (CASE WHEN json_extract(label, '$.expected_tool') IS NULL THEN 0.2 ELSE 0.0 END)
      + 0.1 * min(coalesce(json_array_length(label, '$.flags'), 0), 2)), 4)"""

# ``is_correction`` of a v1 row's human label (arguments compared as minified JSON text).
_V1_CORRECTED = """label_source IS 'human' AND json_extract(label, '$.expected_tool') IS NOT NULL AND (
        json_extract(label, '$.expected_tool') IS NOT json_extract(doc, '$.action.tool')
        OR (json_type(label, '$.expected_arguments') = 'object'
            AND json_extract(label, '$.expected_arguments')
                IS NOT coalesce(json_extract(doc, '$.action.arguments'), '{}')))"""

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
    # v2: the label history and the columns derived from the effective label (issue 13). A v1 row keeps
    # ``labels = '[]'`` beside its ``label``: its history is that one label, by the domain's rule for
    # documents written before the history existed (``Episode._history``), and not copying it halves the
    # rows rewritten. ``labels`` a document may carry (rows written while the domain already had the
    # field) moves from ``doc`` to its column. Unlabeled rows keep the defaults: not human, not
    # corrected, review_priority(None) = 0.3.
    f"""
    ALTER TABLE episodes ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE episodes ADD COLUMN human INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE episodes ADD COLUMN corrected INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE episodes ADD COLUMN review_priority REAL NOT NULL DEFAULT 0.3;
    UPDATE episodes SET
        labels = CASE WHEN instr(doc, '"labels":') > 0 AND json_array_length(doc, '$.labels') > 0
                      THEN json_extract(doc, '$.labels') ELSE '[]' END,
        label = CASE WHEN instr(doc, '"labels":') > 0 AND json_array_length(doc, '$.labels') > 0
                     THEN NULL ELSE label END,
        doc = CASE WHEN instr(doc, '"labels":') > 0 THEN json_remove(doc, '$.labels') ELSE doc END,
        human = label_source IS 'human',
        corrected = CASE WHEN {_V1_CORRECTED} THEN 1 ELSE 0 END,
        review_priority = CASE
            WHEN label IS NULL THEN 0.3
            WHEN label_source IS 'human' THEN 0.0
            ELSE {_V1_AUTO_PRIORITY} END
    WHERE label IS NOT NULL OR instr(doc, '"labels":') > 0;
    CREATE INDEX ix_episodes_review ON episodes(agent_id, human, review_priority DESC, ts DESC, id DESC);
    CREATE INDEX ix_episodes_human_ts ON episodes(agent_id, ts, id) WHERE human = 1;
    """,
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_PAGE = 500
_COLUMNS = "id, doc, label, reward, labeled, version, seq, ts, labels, review_priority"
_LABEL_LIST = TypeAdapter(list[Label])
_ORDERS = {  # order → (ORDER BY, the keyset condition "after this row")
    "newest": ("ts DESC, id DESC", "(ts, id) < (?, ?)"),
    "oldest": ("ts ASC, id ASC", "(ts, id) > (?, ?)"),
    "review": ("review_priority DESC, ts DESC, id DESC", "(review_priority, ts, id) < (?, ?, ?)"),
}


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC (an aware one subtracts exactly)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICRO


_LABEL_FIELDS = {"label", "labels", "reward", "labeled"}


def _row_to_episode(row: sqlite3.Row | tuple[Any, ...]) -> Episode:
    """One validation per row: the label columns are spliced into the stored document's JSON.

    ``doc`` never holds reward/labeled/label/labels (they live in columns, which label writes
    update), so no key is duplicated; ``etag`` is the row version.
    """
    doc: str = row[1]
    reward = "null" if row[3] is None else repr(float(row[3]))
    label = "null" if row[2] is None else row[2]  # a v1 row's label; otherwise derived from labels
    labeled = "true" if row[4] else "false"
    text = (
        f'{doc[:-1]},"reward":{reward},"labeled":{labeled},"label":{label},'
        f'"labels":{row[8]},"etag":"{row[5]}"}}'
    )
    return Episode.model_validate_json(text)


def _append_label_json(labels: str, label: str) -> str:
    """SQL function ``lightning_append_label(labels, label)``: the domain's ``append_label`` on JSON text
    (called only when a history is long enough that the oldest auto label may have to go)."""
    history = append_label(_LABEL_LIST.validate_json(labels), Label.model_validate_json(label))
    return _LABEL_LIST.dump_json(history).decode()


# One auto label appended: ?1 label JSON (pydantic's, minified), ?2 score, ?3 review_priority(label),
# ?4 seq, ?5 id. The JSON text is concatenated onto the stored array — no JSON parsing on the hot path
# — while the history is shorter than MAX_AUTO_LABELS (so it cannot hold more auto labels than that);
# beyond, the domain's append_label trims it. A v1 row's history is its ``label`` (``labels`` still
# '[]'), moved into ``labels`` now. A person's effective label (human = 1) keeps its reward, source and
# priority; the effective label itself is derived from the history on read.
_AUTO_UPDATE = f"""UPDATE episodes SET
    labels = CASE
        WHEN labels != '[]' THEN
            CASE WHEN json_array_length(labels) < {MAX_AUTO_LABELS}
                 THEN substr(labels, 1, length(labels) - 1) || ',' || ?1 || ']'
                 ELSE lightning_append_label(labels, ?1) END
        WHEN label IS NOT NULL THEN '[' || label || ',' || ?1 || ']'
        ELSE '[' || ?1 || ']' END,
    label = NULL,
    reward = CASE WHEN human THEN reward ELSE ?2 END,
    label_source = CASE WHEN human THEN label_source ELSE 'auto' END,
    review_priority = CASE WHEN human THEN review_priority ELSE ?3 END,
    labeled = 1, version = version + 1, seq = ?4
    WHERE id = ?5"""


_UNLABELED = (None, "[]", 0, 0, review_priority(None))


def _label_columns(episode: Episode) -> tuple[str | None, str, int, int, float]:
    """(label_source, labels, human, corrected, review_priority) of a new row. The history is what is
    stored, so the columns follow its effective label even when an imported document named another."""
    if not episode.labels:
        return _UNLABELED  # the capture path: nothing to compute
    effective = effective_label(episode.labels)
    assert effective is not None
    human = effective.source == "human"
    return (
        effective.source,
        _LABEL_LIST.dump_json(episode.labels).decode(),
        1 if human else 0,
        1 if is_correction(effective, episode.action) else 0,
        review_priority(effective),
    )


def _guarded_auto_rows(first: int, writes: Sequence[LabelWrite]) -> list[tuple[Any, ...]] | None:
    """The ``executemany`` rows of ``writes`` when every one is an auto label guarded by one of our etags
    for a known agent, each episode once; None otherwise (the writes then go one by one)."""
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    made: dict[int, tuple[Label, str, float]] = {}  # a label shared by several writes is dumped once
    for i, w in enumerate(writes):
        label, etag = w.label, w.expected_etag
        if label.source != "auto" or etag is None or not etag.isdigit() or w.agent_id is None:
            return None
        if w.episode_id in seen:
            return None  # the second write must see the first's version: one by one
        seen.add(w.episode_id)
        columns = made.get(id(label))
        if columns is None or columns[0] is not label:
            columns = made[id(label)] = (label, label.model_dump_json(), review_priority(label))
        rows.append((columns[1], label.score, columns[2], first + i, w.episode_id, w.agent_id, int(etag)))
    return rows


def _version_of(etag: str) -> int:
    try:
        return int(etag)
    except ValueError:
        return -1  # an etag we never issued is stale by definition


class SqliteEpisodeStore(SqliteComponent):
    """EpisodeStore over one SQLite file (``LIGHTNING_STORE=sqlite:///PATH``)."""

    component = COMPONENT
    migrations = MIGRATIONS

    # --- writes ------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection, with the SQL functions label writes use."""
        with self._db.transaction() as conn:
            conn.create_function("lightning_append_label", 2, _append_label_json, deterministic=True)
            yield conn

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
                    e.model_version,
                    e.reward,
                    first + i,
                    e.model_dump_json(exclude=_LABEL_FIELDS),
                    *_label_columns(e),
                )
                for i, e in enumerate(batch)
            ]
            cursor = conn.executemany(
                "INSERT INTO episodes(id, agent_id, ts, labeled, model_version, reward, seq, doc, "
                "label_source, labels, human, corrected, review_priority) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
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
        """One guarded label append; returns ``written``, ``conflict`` or ``missing``."""
        if label.source == "human":
            return self._write_human_label(conn, seq, episode_id, label, agent_id, expected_etag)
        sql = _AUTO_UPDATE
        params: list[Any] = [label.model_dump_json(), label.score, review_priority(label), seq, episode_id]
        if agent_id is not None:
            sql += " AND agent_id = ?6"
            params.append(agent_id)
        if expected_etag is not None:
            sql += f" AND version = ?{len(params) + 1}"
            params.append(_version_of(expected_etag))
        if conn.execute(sql, params).rowcount == 1:
            return "written"
        return "conflict" if self._exists(conn, episode_id, agent_id) else "missing"

    @staticmethod
    def _exists(conn: sqlite3.Connection, episode_id: str, agent_id: str | None) -> bool:
        sql = "SELECT 1 FROM episodes WHERE id = ?" + (" AND agent_id = ?" if agent_id else "")
        return conn.execute(sql, [episode_id] + ([agent_id] if agent_id else [])).fetchone() is not None

    @staticmethod
    def _write_human_label(
        conn: sqlite3.Connection,
        seq: int,
        episode_id: str,
        label: Label,
        agent_id: str | None,
        expected_etag: str | None,
    ) -> str:
        """A person's label: ``corrected`` needs the episode's action, so the row is read and the
        domain applies the label (``Episode.with_label``) inside the write transaction; the update is
        still conditional on the version the caller expects."""
        sql = f"SELECT {_COLUMNS} FROM episodes WHERE id = ?"
        params: list[Any] = [episode_id]
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        row = conn.execute(sql, params).fetchone()
        if row is None:
            return "missing"
        version = int(row[5]) if expected_etag is None else _version_of(expected_etag)
        episode = _row_to_episode(row).with_label(label)
        assert episode.label is not None
        cursor = conn.execute(
            "UPDATE episodes SET labels = ?, label = NULL, reward = ?, labeled = 1, label_source = ?, "
            "human = ?, corrected = ?, review_priority = ?, version = version + 1, seq = ? "
            "WHERE id = ? AND version = ?",
            (
                _LABEL_LIST.dump_json(episode.labels).decode(),
                episode.reward,
                episode.label.source,
                1 if episode.human_labeled else 0,
                1 if episode.corrected else 0,
                review_priority(episode.label),
                seq,
                episode_id,
                version,
            ),
        )
        return "written" if cursor.rowcount == 1 else "conflict"

    def save_label(
        self, episode_id: str, label: Label, *, agent_id: str | None = None, expected_etag: str | None = None
    ) -> Episode:
        with self._transaction() as conn:
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
        with self._transaction() as conn:
            first = self._take_seq(conn, len(writes))
            rows = _guarded_auto_rows(first, writes)
            if rows is not None:
                self._write_guarded_autos(conn, first, writes, rows, outcome)
                return outcome
            for i, write in enumerate(writes):
                result = self._write_label(
                    conn, first + i, write.episode_id, write.label, write.agent_id, write.expected_etag
                )
                getattr(outcome, "conflicts" if result == "conflict" else result).append(write.episode_id)
        return outcome

    def _write_guarded_autos(
        self,
        conn: sqlite3.Connection,
        first: int,
        writes: Sequence[LabelWrite],
        rows: list[tuple[Any, ...]],
        outcome: LabelWriteOutcome,
    ) -> None:
        """Fast path (the auto-labeling case): one ``executemany`` of guarded auto-label appends.

        A row whose guard does not hold (stale etag, missing id, another agent's id) is left alone, as the
        one-by-one path would leave it. The rows written are exactly those now carrying one of the sequence
        numbers this call reserved (``first`` …), which no other write can hold; the others are told apart
        as the one-by-one path tells them (the id exists for that agent: conflict, else missing).
        """
        cursor = conn.executemany(_AUTO_UPDATE + " AND agent_id = ?6 AND version = ?7", rows)
        if cursor.rowcount == len(writes):
            outcome.written.extend(write.episode_id for write in writes)
            return
        written = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM episodes WHERE seq BETWEEN ? AND ?", (first, first + len(writes) - 1)
            )
        }
        for write in writes:
            if write.episode_id in written:
                outcome.written.append(write.episode_id)
            elif self._exists(conn, write.episode_id, write.agent_id):
                outcome.conflicts.append(write.episode_id)
            else:
                outcome.missing.append(write.episode_id)

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
        # Literals, not parameters: the planner matches them to the partial index (WHERE human = 1).
        if query.human_labeled is not None:
            clauses.append("human = 1" if query.human_labeled else "human = 0")
        if query.corrected is not None:
            # Only a person corrects: saying so lets the human indexes serve the query.
            clauses.append("corrected = 1 AND human = 1" if query.corrected else "corrected = 0")
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

    @classmethod
    def _page(cls, query: EpisodeQuery, after: tuple[Any, ...] | None, size: int) -> tuple[str, list[Any]]:
        """The SQL and parameters of one page of ``query`` after the keyset ``after`` (None: the first)."""
        clauses, params = cls._where(query)
        order_by, keyset = _ORDERS[query.order]
        if after is not None:
            clauses.append(keyset)
            params.extend(after)
        sql = f"SELECT {_COLUMNS} FROM episodes"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return f"{sql} ORDER BY {order_by} LIMIT ?", [*params, size]

    def query(self, query: EpisodeQuery) -> Iterator[Episode]:
        """Keyset-paged over the order's key — (ts, id), or (review_priority, ts, id) for ``review`` —
        so no statement stays open between pages and callers may write (e.g. label what they read)
        while iterating. A write that moves an episode in the order may make it show up twice or not
        at all in a running iteration, as any keyset pager over a changing order would."""
        remaining = query.limit
        after: tuple[Any, ...] | None = None
        cursor = self._db.connection().cursor()
        cursor.row_factory = None  # plain tuples: a page of sqlite3.Row costs more and is read by index
        while remaining is None or remaining > 0:
            page = _PAGE if remaining is None else min(_PAGE, remaining)
            rows = cursor.execute(*self._page(query, after, page)).fetchall()
            for row in rows:
                yield _row_to_episode(row)
            if len(rows) < page:
                return
            last = rows[-1]
            after = (last[9], last[7], last[0]) if query.order == "review" else (last[7], last[0])
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

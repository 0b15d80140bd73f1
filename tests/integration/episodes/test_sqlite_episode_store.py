"""SQLite-only behaviour of the episode store: restarts, migrations, indexes, the Container wiring."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.episodes import MIGRATIONS, SqliteEpisodeStore
from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.domain.episode import Label
from lightning.ports.episodes import EpisodeQuery
from tests.fakes.episodes import make_episode

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


def reopen(path: Path) -> SqliteEpisodeStore:
    """A new process's view of the file: a fresh database object and connections."""
    return SqliteEpisodeStore(SqliteDatabase(path))


def label(score: float) -> Label:
    return Label(source="auto", score=score, evaluator="task_adherence", evaluator_version="t")


def test_change_sequence_survives_restarts_without_skips_or_repeats(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    seen: list[tuple[str, float | None]] = []
    cursor = 0
    for generation in range(4):
        store = reopen(path)
        store.add([make_episode(f"g{generation}-{i}", timestamp=T0 + timedelta(seconds=i)) for i in range(5)])
        if generation:
            store.save_label(f"g{generation - 1}-0", label(generation / 10))
        batch = store.changes_since(cursor, limit=3)  # read part of it before "crashing"
        seen.extend((e.id, e.reward) for e in batch.episodes)
        cursor = batch.cursor
    store = reopen(path)
    while True:
        batch = store.changes_since(cursor, limit=3)
        if not batch.episodes:
            break
        seen.extend((e.id, e.reward) for e in batch.episodes)
        cursor = batch.cursor
    ids = [episode_id for episode_id, _ in seen]
    # every episode seen; no change seen twice; each label write seen (at its newest state)
    assert sorted(set(ids)) == sorted(f"g{g}-{i}" for g in range(4) for i in range(5))
    assert len(seen) == len(set(seen))
    assert sorted((i, r) for i, r in seen if r is not None) == [("g0-0", 0.1), ("g1-0", 0.2), ("g2-0", 0.3)]


def test_sequence_numbers_are_never_reused_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "seq.db"
    reopen(path).add([make_episode("a")])
    first = reopen(path).changes_since(0).cursor
    reopen(path).save_label("a", label(0.5))
    second = reopen(path).changes_since(first).cursor
    reopen(path).add([make_episode("b")])
    third = reopen(path).changes_since(second).cursor
    assert first < second < third


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    reopen(path)
    reopen(path)
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT version FROM schema_versions WHERE component = 'episodes'").fetchone()
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert version == (len(MIGRATIONS),)
    assert {
        "ix_episodes_agent_ts",
        "ix_episodes_agent_labeled_ts",
        "ix_episodes_ts",
        "ix_episodes_seq",
    } <= indexes


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (EpisodeQuery(agent_id="a", labeled=False, limit=10), "ix_episodes_agent_labeled_ts"),
        (EpisodeQuery(agent_id="a", limit=10), "ix_episodes_agent_ts"),
        (EpisodeQuery(since=T0, limit=10), "ix_episodes_ts"),
    ],
)
def test_list_queries_use_an_index_and_no_sort(tmp_path: Path, query: EpisodeQuery, index: str) -> None:
    store = reopen(tmp_path / "plan.db")
    clauses, params = store._where(query)
    sql = f"SELECT id FROM episodes WHERE {' AND '.join(clauses)} ORDER BY ts DESC, id DESC LIMIT 10"
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert index in plan
    assert "TEMP B-TREE" not in plan  # no sort: the index gives the order


def test_container_builds_the_sqlite_store_under_lightning_home(clean_env: Path) -> None:
    store = Container(get_settings()).episodes
    assert isinstance(store, SqliteEpisodeStore)
    store.add([make_episode("via-container")])
    assert (clean_env / "lightning.db").exists()
    assert reopen(clean_env / "lightning.db").get("via-container").id == "via-container"


def test_an_unknown_etag_format_is_stale_not_an_error(tmp_path: Path) -> None:
    store = reopen(tmp_path / "e.db")
    store.add([make_episode("a")])
    from lightning.domain.errors import Conflict

    with pytest.raises(Conflict):
        store.save_label("a", label(0.5), expected_etag='"0000-cosmos-etag"')


# --- v2: label history, derived columns, the review order (issue 13) -------------------------------
def _plan(path: Path, sql: str, params: list[object]) -> str:
    with sqlite3.connect(path) as conn:
        return " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


@pytest.mark.parametrize(
    ("query", "after", "index"),
    [
        (
            EpisodeQuery(agent_id="a", human_labeled=False, order="review", limit=20),
            None,
            "ix_episodes_review",
        ),
        (
            EpisodeQuery(agent_id="a", human_labeled=False, order="review"),
            (0.3, 1_000, "e-1"),
            "ix_episodes_review",
        ),
        (EpisodeQuery(agent_id="a", human_labeled=True, limit=20), None, "ix_episodes_human_ts"),
        (EpisodeQuery(agent_id="a", corrected=True), (1_000, "e-1"), "ix_episodes_human_ts"),
    ],
)
def test_v2_queries_use_an_index_and_no_sort(
    tmp_path: Path, query: EpisodeQuery, after: tuple[object, ...] | None, index: str
) -> None:
    """The review queue's first page and the next ones are read off the index, never sorted (1M rows)."""
    store = reopen(tmp_path / "plan.db")
    sql, params = store._page(query, after, 20)
    plan = _plan(tmp_path / "plan.db", sql, params)
    assert index in plan
    assert "TEMP B-TREE" not in plan


def _v1_database(path: Path, rows: list[tuple[str, str | None, str]]) -> None:
    """A database at schema v1 holding ``rows`` of (id, label JSON or None, doc JSON), written the old way."""
    from lightning.adapters.sqlite.episodes import to_micros

    old = SqliteDatabase(path)
    old.migrate("episodes", MIGRATIONS[:1])
    with old.transaction() as conn:
        for seq, (episode_id, label_json, doc) in enumerate(rows, start=1):
            parsed = Label.model_validate_json(label_json) if label_json else None
            conn.execute(
                "INSERT INTO episodes(id, agent_id, ts, labeled, label_source, reward, seq, doc, label) "
                "VALUES (?, 'autonomous-agent', ?, ?, ?, ?, ?, ?, ?)",
                (
                    episode_id,
                    to_micros(T0 + timedelta(seconds=seq)),
                    1 if parsed else 0,
                    parsed.source if parsed else None,
                    parsed.score if parsed else None,
                    seq,
                    doc,
                    label_json,
                ),
            )
        conn.execute("UPDATE episode_counters SET value = ?", (len(rows),))
    old.close()


def test_the_v2_migration_computes_review_priority_as_the_domain_does(tmp_path: Path) -> None:
    """The migration's SQL copy of ``review_priority`` against the function itself, on every branch."""
    from lightning.domain.episode import review_priority

    labels: list[Label] = []
    for score in [n / 100 for n in range(101)] + [0.4, 0.9, 0.6999999, 0.7000001]:
        for tool_correct in (None, True, False):
            for expected_tool in (None, "sales_report"):
                for flags in ((), ("no_intent",), ("a", "b"), ("a", "b", "c")):
                    labels.append(
                        Label(
                            source="auto",
                            score=score,
                            tool_correct=tool_correct,
                            expected_tool=expected_tool,
                            flags=flags,
                        )
                    )
    doc = make_episode("x").model_dump_json(exclude={"label", "labels", "reward", "labeled"})
    _v1_database(
        tmp_path / "v1.db",
        [
            (f"e{i:05d}", label.model_dump_json(), doc.replace('"x"', f'"e{i:05d}"', 1))
            for i, label in enumerate(labels)
        ],
    )
    reopen(tmp_path / "v1.db")
    with sqlite3.connect(tmp_path / "v1.db") as conn:
        stored = dict(conn.execute("SELECT id, review_priority FROM episodes").fetchall())
    assert len(stored) == len(labels)
    mismatches = [
        (label, stored[f"e{i:05d}"], review_priority(label))
        for i, label in enumerate(labels)
        if stored[f"e{i:05d}"] != review_priority(label)
    ]
    assert mismatches == []


def test_the_v2_migration_derives_human_and_corrected_and_moves_a_documents_labels(tmp_path: Path) -> None:
    episode = make_episode("x")  # action: analyze_churn {"period": "Q4 2025"}
    doc = episode.model_dump_json(exclude={"label", "labels", "reward", "labeled"})
    person = Label(source="human", score=0.2, reason="wrong", expected_tool="sales_report")
    confirmed = Label(source="human", score=0.9, expected_tool="analyze_churn")
    other_args = Label(
        source="human", score=0.3, expected_tool="analyze_churn", expected_arguments={"period": "Q3 2025"}
    )
    auto = Label(source="auto", score=0.9, expected_tool="analyze_churn", tool_correct=True)
    # written while the domain already had ``labels`` but the store did not: the history sat in doc
    history = [auto, person]
    doc_with_history = (
        doc[:-1]
        + ',"labels":'
        + episode.model_copy(update={"labels": history}).model_dump_json(include={"labels"})[
            len('{"labels":') :
        ]
    )
    rows = [
        ("corrected", person.model_dump_json(), doc.replace('"x"', '"corrected"', 1)),
        ("confirmed", confirmed.model_dump_json(), doc.replace('"x"', '"confirmed"', 1)),
        ("other-args", other_args.model_dump_json(), doc.replace('"x"', '"other-args"', 1)),
        ("auto", auto.model_dump_json(), doc.replace('"x"', '"auto"', 1)),
        ("in-doc", person.model_dump_json(), doc_with_history.replace('"x"', '"in-doc"', 1)),
        ("empty-in-doc", None, doc[:-1].replace('"x"', '"empty-in-doc"', 1) + ',"labels":[]}'),
        ("bare", None, doc.replace('"x"', '"bare"', 1)),
    ]
    _v1_database(tmp_path / "v1.db", rows)
    store = reopen(tmp_path / "v1.db")
    with sqlite3.connect(tmp_path / "v1.db") as conn:
        derived = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, human, corrected, review_priority, instr(doc, 'labels') FROM episodes"
            )
        }
    assert derived == {
        "corrected": (1, 1, 0.0, 0),
        "confirmed": (1, 0, 0.0, 0),
        "other-args": (1, 1, 0.0, 0),
        "auto": (0, 0, 0.0, 0),
        "in-doc": (1, 1, 0.0, 0),
        "empty-in-doc": (0, 0, 0.3, 0),
        "bare": (0, 0, 0.3, 0),
    }
    assert store.get("in-doc").labels == history
    assert store.get("corrected").labels == [person]
    assert store.get("empty-in-doc").labels == []
    for episode_id, _, _ in rows:
        assert store.get(episode_id).corrected == bool(derived[episode_id][1])


def test_export_then_import_keeps_the_history_and_its_derived_columns(tmp_path: Path) -> None:
    from lightning.services.episodes import export_episodes, import_episodes

    source, target = reopen(tmp_path / "a.db"), reopen(tmp_path / "b.db")
    source.add([make_episode("x", timestamp=T0), make_episode("y", timestamp=T0 + timedelta(seconds=1))])
    source.save_label("x", label(0.7))
    source.save_label(
        "x",
        Label(source="human", score=0.1, expected_tool="sales_report", expected_arguments={"region": "west"}),
    )
    source.save_label("x", label(0.9))
    source.save_label("y", Label(source="auto", score=0.65, tool_correct=False))
    lines: list[str] = []
    export_episodes(source, EpisodeQuery(), write=lines.append)

    report = import_episodes(lambda: lines, store=target)

    assert report.imported == 2
    for episode_id in ("x", "y"):
        assert target.get(episode_id).model_dump() == source.get(episode_id).model_dump()
    assert [e.id for e in target.query(EpisodeQuery(corrected=True))] == ["x"]
    with sqlite3.connect(tmp_path / "a.db") as a, sqlite3.connect(tmp_path / "b.db") as b:
        derived = (
            "SELECT id, labels, label, reward, human, corrected, review_priority FROM episodes ORDER BY id"
        )
        assert b.execute(derived).fetchall() == a.execute(derived).fetchall()

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

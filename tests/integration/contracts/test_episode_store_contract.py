"""The EpisodeStore contract: every implementation (in-memory fake, SQLite, Cosmos) behaves the same.

Add a backend by extending ``backend``; each test gets a fresh, empty store. The change sequence has its
own fixture (``changes_store``), which says why Cosmos is tested elsewhere for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.domain.episode import Episode, Label
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import EpisodeQuery, EpisodeStore, LabelWrite
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)
AGENT = "autonomous-agent"
OTHER = "approval-agent"


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], EpisodeStore]:
    """A factory of handles on ONE fresh store (several handles = several connections for SQLite)."""
    if request.param == "memory":
        shared = InMemoryEpisodeStore()
        return lambda: shared
    if request.param == "cosmos":
        from lightning.adapters.cosmos.episodes import CosmosEpisodeStore

        settings = request.getfixturevalue("cosmos_settings")()
        return lambda: CosmosEpisodeStore.from_settings(settings)
    path = tmp_path / "contract.db"
    return lambda: SqliteEpisodeStore(SqliteDatabase(path))


@pytest.fixture
def store(backend: Callable[[], EpisodeStore]) -> EpisodeStore:
    return backend()


@pytest.fixture(params=["memory", "sqlite"])
def changes_store(request: pytest.FixtureRequest, tmp_path: Path) -> EpisodeStore:
    """The stores whose ``changes_since`` shows a change at once.

    Cosmos is not among them by design, not by omission: its ``changes_since`` is a scan of the server's
    ``_ts`` (whole seconds) that reports a change only once its second has settled (``settle_seconds``),
    and the Functions host reads the change feed instead. Its rules are tested on the emulator in
    ``tests/integration/cosmos/test_cosmos_episodes.py``."""
    if request.param == "memory":
        return InMemoryEpisodeStore()
    return SqliteEpisodeStore(SqliteDatabase(tmp_path / "changes.db"))


def episodes(
    n: int, *, agent_id: str = AGENT, start: int = 0, step: timedelta = timedelta(seconds=1)
) -> list[Episode]:
    return [
        make_episode(f"{agent_id}-{i:05d}", agent_id=agent_id, timestamp=T0 + step * i)
        for i in range(start, start + n)
    ]


def human(score: float = 0.9, reason: str = "checked") -> Label:
    return Label(source="human", score=score, reason=reason, labeled_by="alice")


def auto(score: float = 0.5) -> Label:
    return Label(
        source="auto", score=score, reason="rubric", evaluator="task_adherence", evaluator_version="t"
    )


# --- add / get ----------------------------------------------------------------------------------
def test_add_inserts_only_new_ids(store: EpisodeStore) -> None:
    assert store.add(episodes(3)) == 3
    assert store.add(episodes(5)) == 2  # three already there
    assert store.count(EpisodeQuery()) == 5


def test_duplicate_ids_within_one_batch_count_once(store: EpisodeStore) -> None:
    first = make_episode("dup", query="first")
    second = make_episode("dup", query="second")
    assert store.add([first, second]) == 1
    assert store.get("dup").state.query == "first"


def test_readding_never_overwrites_a_label(store: EpisodeStore) -> None:
    store.add(episodes(1))
    store.save_label(f"{AGENT}-00000", human(0.8))
    assert store.add(episodes(1)) == 0
    assert store.get(f"{AGENT}-00000").reward == 0.8


def test_add_of_nothing_is_zero(store: EpisodeStore) -> None:
    assert store.add([]) == 0


def test_get_round_trips_every_field(store: EpisodeStore) -> None:
    original = make_episode(
        "full",
        timestamp=datetime(2026, 2, 7, 10, 30, 0, 123456, tzinfo=UTC),
        model_version="ft:gpt-4o-mini:autonomous-agent:abc123",
        latency_ms=12.5,
        response="Churn was 12%.",
        result={"period": "Q4 2025", "churn_rate": 0.12, "nested": {"list": [1, 2, {"x": None}]}},
    )
    store.add([original])
    got = store.get("full")
    assert got.model_dump() == original.model_dump()
    assert got.etag


def test_imported_labels_survive(store: EpisodeStore) -> None:
    labeled = make_episode("imported", reward=0.75, labeled=True, label=human(0.75).model_dump())
    bare = make_episode("bare-labeled", reward=0.6, labeled=True)
    store.add([labeled, bare])
    assert store.get("imported").label == human(0.75).model_copy(
        update={"labeled_at": labeled.label.labeled_at}
    )  # type: ignore[union-attr]
    got = store.get("bare-labeled")
    assert (got.reward, got.labeled, got.label) == (0.6, True, None)


def test_get_missing_is_not_found(store: EpisodeStore) -> None:
    with pytest.raises(NotFound) as err:
        store.get("nope")
    assert err.value.ident == "nope"


def test_get_with_another_agent_is_not_found(store: EpisodeStore) -> None:
    store.add(episodes(1))
    assert store.get(f"{AGENT}-00000", agent_id=AGENT).id == f"{AGENT}-00000"
    with pytest.raises(NotFound):
        store.get(f"{AGENT}-00000", agent_id=OTHER)


# --- query / count ------------------------------------------------------------------------------
def test_query_newest_first_by_default_and_limit(store: EpisodeStore) -> None:
    store.add(episodes(10))
    ids = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, limit=3))]
    assert ids == [f"{AGENT}-00009", f"{AGENT}-00008", f"{AGENT}-00007"]
    oldest = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, limit=2, order="oldest"))]
    assert oldest == [f"{AGENT}-00000", f"{AGENT}-00001"]


def test_equal_timestamps_order_by_id(store: EpisodeStore) -> None:
    store.add([make_episode(name, timestamp=T0) for name in ("b", "c", "a")])
    assert [e.id for e in store.query(EpisodeQuery())] == ["c", "b", "a"]
    assert [e.id for e in store.query(EpisodeQuery(order="oldest"))] == ["a", "b", "c"]


def test_query_filters_by_agent_and_label_state(store: EpisodeStore) -> None:
    store.add(episodes(4) + episodes(3, agent_id=OTHER))
    store.save_label(f"{AGENT}-00001", human())
    store.save_label(f"{AGENT}-00002", auto())
    unlabeled = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, labeled=False))]
    labeled = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, labeled=True))]
    assert unlabeled == [f"{AGENT}-00003", f"{AGENT}-00000"]
    assert labeled == [f"{AGENT}-00002", f"{AGENT}-00001"]
    assert store.count(EpisodeQuery(agent_id=OTHER)) == 3
    assert store.count(EpisodeQuery(labeled=False)) == 5
    assert store.count(EpisodeQuery(agent_id="nobody")) == 0


def test_time_range_is_since_inclusive_until_exclusive(store: EpisodeStore) -> None:
    store.add(episodes(10))
    found = store.query(EpisodeQuery(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6)))
    assert sorted(e.id for e in found) == [f"{AGENT}-0000{i}" for i in (3, 4, 5)]
    assert store.count(EpisodeQuery(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6))) == 3


def test_time_range_with_other_timezone(store: EpisodeStore) -> None:
    store.add(episodes(3, step=timedelta(hours=1)))
    from datetime import timezone

    cet = timezone(timedelta(hours=1))
    since = datetime(2026, 2, 7, 12, 0, tzinfo=cet)  # = 11:00 UTC
    assert [e.id for e in store.query(EpisodeQuery(since=since))] == [f"{AGENT}-00002", f"{AGENT}-00001"]


def test_query_by_model_version_and_min_reward(store: EpisodeStore) -> None:
    store.add(
        [
            make_episode("a", model_version="base", timestamp=T0),
            make_episode("b", model_version="tuned", timestamp=T0 + timedelta(seconds=1)),
            make_episode("c", model_version="tuned", timestamp=T0 + timedelta(seconds=2)),
        ]
    )
    store.save_label("b", auto(0.9))
    store.save_label("c", auto(0.4))
    assert [e.id for e in store.query(EpisodeQuery(model_version="tuned"))] == ["c", "b"]
    assert [e.id for e in store.query(EpisodeQuery(min_reward=0.7))] == ["b"]
    assert store.count(EpisodeQuery(min_reward=0.3)) == 2


def test_query_streams_past_page_boundaries(store: EpisodeStore) -> None:
    store.add(episodes(1203))
    ids = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT))]
    assert len(ids) == 1203 == len(set(ids))
    assert ids[0] == f"{AGENT}-01202"
    assert ids[-1] == f"{AGENT}-00000"
    assert len(list(store.query(EpisodeQuery(limit=1001)))) == 1001
    assert store.count(EpisodeQuery(limit=10)) == 10


def test_labeling_while_iterating_visits_each_episode_once(store: EpisodeStore) -> None:
    """label-batch reads unlabeled episodes and writes their labels as it goes."""
    store.add(episodes(1100))
    seen = []
    for episode in store.query(EpisodeQuery(agent_id=AGENT, labeled=False, order="oldest")):
        seen.append(episode.id)
        store.save_label(episode.id, auto(), expected_etag=episode.etag)
    assert len(seen) == 1100 == len(set(seen))
    assert store.count(EpisodeQuery(labeled=False)) == 0


# --- labels and etags ---------------------------------------------------------------------------
def test_save_label_sets_reward_and_changes_etag(store: EpisodeStore) -> None:
    store.add(episodes(1))
    before = store.get(f"{AGENT}-00000")
    after = store.save_label(before.id, human(0.9, "Correct tool selection"), expected_etag=before.etag)
    assert (after.reward, after.labeled) == (0.9, True)
    assert after.label is not None
    assert after.label.reason == "Correct tool selection"
    assert after.etag
    assert after.etag != before.etag
    assert store.get(before.id) == after


def test_stale_etag_is_a_conflict(store: EpisodeStore) -> None:
    store.add(episodes(1))
    seen = store.get(f"{AGENT}-00000")
    store.save_label(seen.id, human(0.9), expected_etag=seen.etag)
    with pytest.raises(Conflict) as err:
        store.save_label(seen.id, auto(0.1), expected_etag=seen.etag)
    assert err.value.ident == seen.id
    assert store.get(seen.id).reward == 0.9  # the loser wrote nothing


def test_unconditional_write_and_relabel(store: EpisodeStore) -> None:
    store.add(episodes(1))
    store.save_label(f"{AGENT}-00000", auto(0.2))
    final = store.save_label(f"{AGENT}-00000", human(0.95))
    assert final.reward == 0.95
    assert final.label is not None
    assert final.label.source == "human"


def test_label_of_missing_episode_is_not_found(store: EpisodeStore) -> None:
    with pytest.raises(NotFound):
        store.save_label("nope", human())
    store.add(episodes(1))
    with pytest.raises(NotFound):
        store.save_label(f"{AGENT}-00000", human(), agent_id=OTHER)


def test_save_labels_reports_each_outcome(store: EpisodeStore) -> None:
    store.add(episodes(3))
    etags = {e.id: e.etag for e in store.query(EpisodeQuery())}
    store.save_label(f"{AGENT}-00002", human())  # makes its etag stale
    outcome = store.save_labels(
        [
            LabelWrite(
                episode_id=f"{AGENT}-00000",
                agent_id=AGENT,
                label=auto(0.7),
                expected_etag=etags[f"{AGENT}-00000"],
            ),
            LabelWrite(episode_id=f"{AGENT}-00001", agent_id=AGENT, label=auto(0.8)),
            LabelWrite(
                episode_id=f"{AGENT}-00002",
                agent_id=AGENT,
                label=auto(0.1),
                expected_etag=etags[f"{AGENT}-00002"],
            ),
            LabelWrite(episode_id="ghost", agent_id=AGENT, label=auto(0.1)),
        ]
    )
    assert outcome.written == [f"{AGENT}-00000", f"{AGENT}-00001"]
    assert outcome.conflicts == [f"{AGENT}-00002"]
    assert outcome.missing == ["ghost"]
    assert store.get(f"{AGENT}-00002").label.source == "human"  # type: ignore[union-attr]
    assert store.save_labels([]).written == []


def test_concurrent_label_writes_exactly_one_wins(backend: Callable[[], EpisodeStore]) -> None:
    """Two writers (threads; separate connections for SQLite) race with the same etag, 25 times."""
    setup = backend()
    setup.add(episodes(25))
    results: dict[str, list[str]] = {}
    lock = threading.Lock()

    def writer(name: str, score: float, barrier: threading.Barrier, episode_id: str, etag: str) -> None:
        store = backend()
        barrier.wait()
        try:
            store.save_label(episode_id, human(score, name), expected_etag=etag)
            outcome = "won"
        except Conflict:
            outcome = "conflict"
        with lock:
            results.setdefault(episode_id, []).append(outcome)

    for episode in list(setup.query(EpisodeQuery())):
        assert episode.etag is not None
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=writer, args=(name, score, barrier, episode.id, episode.etag))
            for name, score in (("first", 0.9), ("second", 0.1))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert len(results) == 25
    for outcomes in results.values():
        assert sorted(outcomes) == ["conflict", "won"]
    for episode in setup.query(EpisodeQuery()):
        assert episode.label is not None
        assert episode.reward == {"first": 0.9, "second": 0.1}[episode.label.reason]


# --- change sequence ----------------------------------------------------------------------------
def test_changes_since_follows_inserts_then_label_writes(changes_store: EpisodeStore) -> None:
    changes_store.add(episodes(3))
    batch = changes_store.changes_since(0)
    assert [e.id for e in batch.episodes] == [f"{AGENT}-0000{i}" for i in range(3)]
    cursor = batch.cursor
    assert changes_store.changes_since(cursor).episodes == []
    assert changes_store.changes_since(cursor).cursor == cursor

    changes_store.save_label(f"{AGENT}-00000", auto(0.6))
    changes_store.add(episodes(1, start=3))
    later = changes_store.changes_since(cursor)
    assert [e.id for e in later.episodes] == [f"{AGENT}-00000", f"{AGENT}-00003"]
    assert later.episodes[0].labeled
    assert later.episodes[0].reward == 0.6
    assert later.cursor > cursor


def test_an_episode_changed_twice_appears_once_at_its_newest(changes_store: EpisodeStore) -> None:
    changes_store.add(episodes(2))
    cursor = changes_store.changes_since(0).cursor
    changes_store.save_label(f"{AGENT}-00000", auto(0.3))
    changes_store.save_label(f"{AGENT}-00001", auto(0.4))
    changes_store.save_label(f"{AGENT}-00000", human(0.9))
    batch = changes_store.changes_since(cursor)
    assert [(e.id, e.reward) for e in batch.episodes] == [(f"{AGENT}-00001", 0.4), (f"{AGENT}-00000", 0.9)]


def test_replays_and_conflicts_produce_no_changes(changes_store: EpisodeStore) -> None:
    changes_store.add(episodes(2))
    cursor = changes_store.changes_since(0).cursor
    changes_store.add(episodes(2))  # replay: nothing new
    stale = changes_store.get(f"{AGENT}-00000").etag
    changes_store.save_label(f"{AGENT}-00000", human())
    with pytest.raises(Conflict):
        changes_store.save_label(f"{AGENT}-00000", auto(), expected_etag=stale)
    assert [e.id for e in changes_store.changes_since(cursor).episodes] == [f"{AGENT}-00000"]


def test_changes_since_pages_with_limit_without_skipping(changes_store: EpisodeStore) -> None:
    changes_store.add(episodes(25))
    for i in range(0, 25, 5):
        changes_store.save_label(f"{AGENT}-{i:05d}", auto())
    cursor, seen = 0, []
    while True:
        batch = changes_store.changes_since(cursor, limit=4)
        if not batch.episodes:
            break
        assert len(batch.episodes) <= 4
        seen.extend(e.id for e in batch.episodes)
        cursor = batch.cursor
    assert len(seen) == 25 == len(set(seen))
    labeled_last = seen[-5:]
    assert labeled_last == [f"{AGENT}-{i:05d}" for i in range(0, 25, 5)]


def test_guarded_batch_with_one_stale_etag_writes_the_others(store: EpisodeStore) -> None:
    """The all-guarded batch (auto-labeling's shape) with one loser: nothing half-written, nothing lost."""
    store.add(episodes(4))
    seen = {e.id: e.etag for e in store.query(EpisodeQuery())}
    store.save_label(f"{AGENT}-00002", human(0.99))
    writes = [
        LabelWrite(episode_id=episode_id, agent_id=AGENT, label=auto(0.5), expected_etag=etag)
        for episode_id, etag in sorted(seen.items())
    ]
    outcome = store.save_labels(writes)
    assert outcome.conflicts == [f"{AGENT}-00002"]
    assert sorted(outcome.written) == [f"{AGENT}-00000", f"{AGENT}-00001", f"{AGENT}-00003"]
    assert store.get(f"{AGENT}-00002").reward == 0.99
    for episode_id in outcome.written:
        assert store.get(episode_id).etag != seen[episode_id]


def test_a_guarded_batch_changes_only_what_it_wrote(changes_store: EpisodeStore) -> None:
    changes_store.add(episodes(4))
    seen = {e.id: e.etag for e in changes_store.query(EpisodeQuery())}
    changes_store.save_label(f"{AGENT}-00002", human(0.99))
    cursor = changes_store.changes_since(0).cursor
    outcome = changes_store.save_labels(
        [
            LabelWrite(episode_id=episode_id, agent_id=AGENT, label=auto(0.5), expected_etag=etag)
            for episode_id, etag in sorted(seen.items())
        ]
    )
    assert outcome.conflicts == [f"{AGENT}-00002"]
    assert sorted(e.id for e in changes_store.changes_since(cursor).episodes) == sorted(outcome.written)


def test_the_same_episode_twice_in_one_guarded_batch_writes_once(store: EpisodeStore) -> None:
    store.add(episodes(1))
    etag = store.get(f"{AGENT}-00000").etag
    twice = [
        LabelWrite(episode_id=f"{AGENT}-00000", agent_id=AGENT, label=auto(score), expected_etag=etag)
        for score in (0.3, 0.6)
    ]
    outcome = store.save_labels(twice)
    assert (outcome.written, outcome.conflicts) == ([f"{AGENT}-00000"], [f"{AGENT}-00000"])
    assert store.get(f"{AGENT}-00000").reward == 0.3


def test_text_survives_exactly(store: EpisodeStore) -> None:
    tricky = 'Ünïcode “quotes” \\ backslash "json" \n newline \u2028 and emoji 📈'
    store.add([make_episode("t", query=tricky, result={"note": tricky}, response=tricky)])
    store.save_label("t", human(0.5, tricky))
    got = store.get("t")
    assert got.state.query == tricky
    assert got.result == {"note": tricky}
    assert got.label is not None
    assert got.label.reason == tricky

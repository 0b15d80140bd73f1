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
from lightning.bootstrap import cosmos_account
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
        return lambda: CosmosEpisodeStore.in_account(cosmos_account(settings))
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


def test_writes_sharing_one_label_object_each_get_it(store: EpisodeStore) -> None:
    """The labeler hands one ``Label`` to every episode with the same verdict; each episode must get its
    own copy in its history, with its own reward and review priority (an adapter may serialize it once)."""
    store.add(episodes(4))
    etags = {e.id: e.etag for e in store.query(EpisodeQuery())}
    shared, other = auto(0.8), auto(0.2)
    writes = [
        LabelWrite(episode_id=episode_id, agent_id=AGENT, label=label, expected_etag=etags[episode_id])
        for episode_id, label in zip(sorted(etags), (shared, other, shared, shared), strict=True)
    ]
    assert store.save_labels(writes).written == [write.episode_id for write in writes]
    for write in writes:
        episode = store.get(write.episode_id)
        assert episode.labels == [write.label]
        assert episode.reward == write.label.score
    by_priority = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, order="review"))]
    assert by_priority[-1] == sorted(etags)[1]  # 0.8 is in the review band; 0.2 is not


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


def test_a_guarded_batch_tells_missing_and_other_agents_ids_from_stale_ones(store: EpisodeStore) -> None:
    """Every write guarded (the fast path's shape) with a stale etag, an unknown id and another agent's id."""
    store.add(episodes(3))
    store.add(episodes(1, agent_id=OTHER))
    seen = {e.id: e.etag for e in store.query(EpisodeQuery(agent_id=AGENT))}
    other = store.get(f"{OTHER}-00000")
    store.save_label(f"{AGENT}-00001", human(0.99))
    writes = [
        LabelWrite(episode_id=episode_id, agent_id=AGENT, label=auto(0.5), expected_etag=etag)
        for episode_id, etag in sorted(seen.items())
    ]
    writes.append(
        LabelWrite(episode_id="ghost", agent_id=AGENT, label=auto(0.5), expected_etag=seen[f"{AGENT}-00000"])
    )
    writes.append(LabelWrite(episode_id=other.id, agent_id=AGENT, label=auto(0.5), expected_etag=other.etag))
    outcome = store.save_labels(writes)
    assert outcome.written == [f"{AGENT}-00000", f"{AGENT}-00002"]
    assert outcome.conflicts == [f"{AGENT}-00001"]
    assert outcome.missing == ["ghost", other.id]
    assert not store.get(other.id).labeled


def test_text_survives_exactly(store: EpisodeStore) -> None:
    tricky = 'Ünïcode “quotes” \\ backslash "json" \n newline \u2028 and emoji 📈'
    store.add([make_episode("t", query=tricky, result={"note": tricky}, response=tricky)])
    store.save_label("t", human(0.5, tricky))
    got = store.get("t")
    assert got.state.query == tricky
    assert got.result == {"note": tricky}
    assert got.label is not None
    assert got.label.reason == tricky


# --- label history (issue 13) ---------------------------------------------------------------------
def correction(tool: str = "sales_report", arguments: dict[str, object] | None = None) -> Label:
    return Label(
        source="human",
        score=0.1,
        reason="wrong call",
        labeled_by="alice",
        expected_tool=tool,
        expected_arguments={"region": "west"} if arguments is None else arguments,
    )


def judged(
    score: float,
    *,
    expected_tool: str | None = "analyze_churn",
    tool_correct: bool | None = True,
    flags: tuple[str, ...] = (),
    reason: str = "rubric",
) -> Label:
    return Label(
        source="auto",
        score=score,
        reason=reason,
        evaluator="task_adherence",
        evaluator_version="rubric-2",
        labeled_by="rubric",
        expected_tool=expected_tool,
        tool_correct=tool_correct,
        flags=flags,
    )


def test_human_then_auto_keeps_the_person_effective_and_both_in_history(store: EpisodeStore) -> None:
    store.add(episodes(1))
    episode_id = f"{AGENT}-00000"
    person = human(0.9, "right call")
    store.save_label(episode_id, person)
    after = store.save_label(episode_id, judged(0.2, reason="judge disagrees"))
    assert [(label.source, label.reason) for label in after.labels] == [
        ("human", "right call"),
        ("auto", "judge disagrees"),
    ]
    assert after.label == after.labels[0]
    assert (after.reward, after.labeled, after.human_labeled) == (0.9, True, True)
    assert after.auto_label is not None
    assert after.auto_label.score == 0.2
    assert store.get(episode_id) == after
    assert store.count(EpisodeQuery(agent_id=AGENT, human_labeled=True)) == 1


def test_auto_then_human_appends_and_the_person_wins(store: EpisodeStore) -> None:
    store.add(episodes(1))
    episode_id = f"{AGENT}-00000"
    first = store.save_label(episode_id, judged(0.95))
    assert (first.reward, first.human_labeled, len(first.labels)) == (0.95, False, 1)
    after = store.save_label(episode_id, human(0.3, "not what I asked"), expected_etag=first.etag)
    assert [label.source for label in after.labels] == ["auto", "human"]
    assert after.labels[0] == first.labels[0]
    assert after.label is not None
    assert (after.label.reason, after.reward, after.human_labeled) == ("not what I asked", 0.3, True)


def test_batched_auto_labels_never_displace_a_person(store: EpisodeStore) -> None:
    """The guarded executemany path (auto-labeling's shape) appends too, and leaves a person's label."""
    store.add(episodes(3))
    store.save_label(f"{AGENT}-00001", human(0.8, "checked"))
    seen = {e.id: e.etag for e in store.query(EpisodeQuery(agent_id=AGENT))}
    outcome = store.save_labels(
        [
            LabelWrite(episode_id=episode_id, agent_id=AGENT, label=judged(0.4), expected_etag=etag)
            for episode_id, etag in sorted(seen.items())
        ]
    )
    assert sorted(outcome.written) == sorted(seen)
    person = store.get(f"{AGENT}-00001")
    assert [label.source for label in person.labels] == ["human", "auto"]
    assert (person.reward, person.label.reason if person.label else None) == (0.8, "checked")
    for episode_id in (f"{AGENT}-00000", f"{AGENT}-00002"):
        got = store.get(episode_id)
        assert (got.reward, [label.source for label in got.labels]) == (0.4, ["auto"])


def test_history_round_trips_every_label_field(store: EpisodeStore) -> None:
    store.add([make_episode("e", timestamp=T0)])
    rich = Label(
        source="auto",
        score=0.65,
        reason='Ünïcode “reason” \\ "json"',
        evaluator="task_adherence",
        evaluator_version="rubric-2",
        labeled_at=datetime(2026, 2, 7, 11, 0, 0, 123456, tzinfo=UTC),
        labeled_by="rubric",
        expected_tool="sales_forecast",
        expected_arguments={"horizon_months": 6, "nested": {"list": [1, None]}},
        tool_correct=False,
        complete=True,
        flags=("competing_intent", "unstated_arguments"),
    )
    store.save_label("e", rich)
    store.save_label("e", judged(0.5, reason="“again” ✓"))  # appended after a history with non-ASCII text
    store.save_label("e", correction("sales_forecast", {"horizon_months": 6}))
    got = store.get("e")
    assert got.labels[0] == rich
    assert got.labels[1].reason == "“again” ✓"
    assert got.labels[2].expected_arguments == {"horizon_months": 6}
    assert [e.labels for e in store.query(EpisodeQuery(agent_id=AGENT))] == [got.labels]


def test_history_keeps_every_person_and_the_newest_auto_labels(store: EpisodeStore) -> None:
    from lightning.domain.episode import MAX_AUTO_LABELS

    store.add(episodes(1))
    episode_id = f"{AGENT}-00000"
    store.save_label(episode_id, judged(0.5, reason="auto-0"))
    store.save_label(episode_id, human(0.9, "person-1"))
    for n in range(1, MAX_AUTO_LABELS + 3):  # guarded batches and single writes, both
        if n % 2:
            current = store.get(episode_id)
            write = LabelWrite(
                episode_id=episode_id,
                agent_id=AGENT,
                label=judged(0.5, reason=f"auto-{n}"),
                expected_etag=current.etag,
            )
            assert store.save_labels([write]).written == [episode_id]
        else:
            store.save_label(episode_id, judged(0.5, reason=f"auto-{n}"))
    autos = [f"auto-{n}" for n in range(3, MAX_AUTO_LABELS + 3)]  # auto-0..auto-2 trimmed
    assert [label.reason for label in store.get(episode_id).labels] == ["person-1", *autos]
    store.save_label(episode_id, human(0.7, "person-2"))
    got = store.get(episode_id)
    assert [label.reason for label in got.labels] == ["person-1", *autos, "person-2"]
    assert (got.reward, got.label.reason if got.label else None) == (0.7, "person-2")


def test_human_labeled_and_corrected_filters_and_counts(store: EpisodeStore) -> None:
    store.add(episodes(6) + episodes(1, agent_id=OTHER))
    store.save_label(f"{AGENT}-00001", judged(0.9))
    store.save_label(f"{AGENT}-00002", human(0.95))  # accepted as it is
    store.save_label(f"{AGENT}-00003", correction())  # another tool
    store.save_label(f"{AGENT}-00004", correction("analyze_churn", {"period": "Q3 2025"}))  # other arguments
    store.save_label(f"{AGENT}-00005", correction("analyze_churn", {"period": "Q4 2025"}))  # the same call
    store.save_label(f"{AGENT}-00003", judged(0.9))  # an auto label later changes nothing
    store.save_label(f"{OTHER}-00000", correction())

    def ids(**flags: object) -> list[str]:
        return [e.id[-1] for e in store.query(EpisodeQuery(agent_id=AGENT, **flags))]  # type: ignore[arg-type]

    assert ids(human_labeled=True) == ["5", "4", "3", "2"]
    assert ids(human_labeled=False) == ["1", "0"]
    assert ids(corrected=True) == ["4", "3"]
    assert ids(corrected=False) == ["5", "2", "1", "0"]
    assert ids(human_labeled=True, corrected=False) == ["5", "2"]
    assert ids(human_labeled=False, labeled=True) == ["1"]
    assert ids(corrected=True, order="oldest") == ["3", "4"]
    assert store.count(EpisodeQuery(agent_id=AGENT, human_labeled=True)) == 4
    assert store.count(EpisodeQuery(agent_id=AGENT, human_labeled=False)) == 2
    assert store.count(EpisodeQuery(agent_id=AGENT, corrected=True)) == 2
    assert store.count(EpisodeQuery(corrected=True)) == 3
    assert store.count(EpisodeQuery(human_labeled=True, limit=2)) == 2
    assert store.get(f"{AGENT}-00003").corrected


def test_review_order_ranks_by_the_effective_labels_priority_then_newest(store: EpisodeStore) -> None:
    # priorities (lightning/domain/episode.py review_priority): a unlabeled 0.3; b, f 0.55 (uncertain score,
    # no expected tool); c 0.0 (confident, agreed); d 0.7417 (in band, wrong tool, flags); e human 0.0;
    # g imported with a reward but no label record 0.3.
    store.add([make_episode(name, timestamp=T0 + timedelta(seconds=i)) for i, name in enumerate("abcdef")])
    store.add([make_episode("g", timestamp=T0 + timedelta(seconds=6), reward=0.8, labeled=True)])
    store.save_label("b", judged(0.7, expected_tool=None, tool_correct=None))
    store.save_label("c", judged(0.95))
    store.save_label(
        "d", judged(0.65, expected_tool="sales_report", tool_correct=False, flags=("a", "b", "c"))
    )
    store.save_label("e", human(0.9))
    store.save_label("e", judged(0.7, expected_tool=None))  # after a person: still not a candidate
    store.save_label("f", judged(0.7, expected_tool=None, tool_correct=None))

    def review(**flags: object) -> list[str]:
        return [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, order="review", **flags))]  # type: ignore[arg-type]

    assert review(human_labeled=False) == ["d", "f", "b", "g", "a", "c"]
    assert review() == ["d", "f", "b", "g", "a", "e", "c"]
    assert review(human_labeled=False, limit=2) == ["d", "f"]
    assert review(human_labeled=False, labeled=True) == ["d", "f", "b", "g", "c"]

    store.save_label("d", human(0.2))  # reviewed: leaves the queue
    store.save_label("a", judged(0.3, expected_tool="sales_report", tool_correct=False))  # 0.25
    store.save_label("b", judged(0.99))  # re-scored with confidence: 0.0
    assert review(human_labeled=False) == ["f", "g", "a", "c", "b"]


def test_review_order_pages_through_ties_without_skipping(store: EpisodeStore) -> None:
    scores = (0.7, 0.95, 0.55)  # review priorities 0.35, 0.0, 0.175: long runs of equal keys
    batch = [
        make_episode(
            f"r{i:04d}",
            timestamp=T0 + timedelta(seconds=i // 3),
            labels=[judged(scores[i % 3]).model_dump()] if i % 4 else [],
        )
        for i in range(1100)
    ]
    store.add(batch)
    from lightning.domain.episode import review_priority

    expected = [
        e.id for e in sorted(batch, key=lambda e: (review_priority(e.label), e.timestamp, e.id), reverse=True)
    ]
    got = [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, order="review", human_labeled=False))]
    assert got == expected
    assert store.count(EpisodeQuery(agent_id=AGENT, human_labeled=False)) == 1100


def test_a_stale_etag_on_a_human_label_is_a_conflict_and_writes_nothing(store: EpisodeStore) -> None:
    store.add(episodes(1))
    episode_id = f"{AGENT}-00000"
    seen = store.get(episode_id)
    judged_now = store.save_label(episode_id, judged(0.4), expected_etag=seen.etag)
    with pytest.raises(Conflict):
        store.save_label(episode_id, correction(), expected_etag=seen.etag)
    after = store.get(episode_id)
    assert after == judged_now  # same history, label, reward and etag
    assert [label.source for label in after.labels] == ["auto"]
    assert store.count(EpisodeQuery(corrected=True)) == 0
    outcome = store.save_labels(
        [LabelWrite(episode_id=episode_id, agent_id=AGENT, label=correction(), expected_etag=seen.etag)]
    )
    assert outcome.conflicts == [episode_id]
    assert store.get(episode_id) == judged_now


def test_unguarded_appends_racing_on_one_episode_all_land(backend: Callable[[], EpisodeStore]) -> None:
    """Four writers append at once without an etag: none of their labels may be lost."""
    setup = backend()
    setup.add(episodes(1))
    episode_id = f"{AGENT}-00000"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        store = backend()
        barrier.wait()
        try:
            store.save_label(episode_id, judged(0.5, reason=f"writer-{n}"))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(label.reason for label in setup.get(episode_id).labels) == [f"writer-{n}" for n in range(4)]


def test_an_imported_history_is_kept_with_its_derived_fields(store: EpisodeStore) -> None:
    auto_first = judged(0.95, reason="judge")
    person = correction()
    imported = make_episode("imported", timestamp=T0, labels=[auto_first.model_dump(), person.model_dump()])
    auto_only = make_episode(
        "auto-only",
        timestamp=T0 + timedelta(seconds=1),
        labels=[judged(0.7, expected_tool=None, tool_correct=None).model_dump()],
    )
    assert imported.label == person  # the effective label: the person's
    store.add([imported, auto_only, make_episode("bare", timestamp=T0 + timedelta(seconds=2))])
    got = store.get("imported")
    assert got.labels == [auto_first, person]
    assert got.label == person
    assert (got.reward, got.labeled) == (imported.reward, imported.labeled)
    assert [e.id for e in store.query(EpisodeQuery(corrected=True))] == ["imported"]
    assert [e.id for e in store.query(EpisodeQuery(human_labeled=True))] == ["imported"]
    assert [e.id for e in store.query(EpisodeQuery(agent_id=AGENT, order="review", human_labeled=False))] == [
        "auto-only",  # 0.55
        "bare",  # 0.3
    ]
    assert store.get("auto-only").labels[0].score == 0.7


# --- documents written before the history existed ---------------------------------------------------
LEGACY_LABEL = {
    "source": "human",
    "score": 0.85,
    "reason": "checked by hand",
    "evaluator": None,
    "evaluator_version": None,
    "labeled_at": "2026-01-05T09:00:00Z",
    "labeled_by": "alice",
    "expected_tool": None,
    "tool_correct": None,
    "complete": None,
}
LEGACY_AUTO = {
    "source": "auto",
    "score": 0.7,
    "reason": "uncertain",
    "evaluator": "task_adherence",
    "evaluator_version": "rubric-1",
    "labeled_at": "2026-01-05T09:00:00Z",
    "labeled_by": "rubric",
    "expected_tool": None,
    "tool_correct": False,
    "complete": True,
}


def _legacy_document(episode_id: str, label: dict[str, object] | None, seconds: int) -> dict[str, object]:
    """An episode document as stored before ``labels`` existed: the effective ``label`` only."""
    doc = make_episode(episode_id, timestamp=T0 + timedelta(seconds=seconds)).to_document()
    del doc["labels"]
    doc["label"] = label
    doc["reward"] = None if label is None else label["score"]
    doc["labeled"] = label is not None
    return doc


LEGACY = {
    "old-human": _legacy_document("old-human", LEGACY_LABEL, 0),
    "old-auto": _legacy_document("old-auto", LEGACY_AUTO, 1),
    "old-bare": _legacy_document("old-bare", None, 2),
}


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def legacy_store(request: pytest.FixtureRequest, tmp_path: Path) -> EpisodeStore:
    """A store holding ``LEGACY`` written the old way: the documents as they were (memory); rows of
    the v1 schema, then the database opened by today's code (SQLite: the v2 migration runs); items of
    the old shape (Cosmos)."""
    if request.param == "memory":
        return InMemoryEpisodeStore([Episode.model_validate(doc) for doc in LEGACY.values()])
    if request.param == "sqlite":
        import json

        from lightning.adapters.sqlite.episodes import MIGRATIONS, to_micros

        path = tmp_path / "v1.db"
        old = SqliteDatabase(path)
        old.migrate("episodes", MIGRATIONS[:1])
        with old.transaction() as conn:
            for seq, doc in enumerate(LEGACY.values(), start=1):
                body = {k: v for k, v in doc.items() if k not in ("label", "reward", "labeled")}
                label = doc["label"]
                conn.execute(
                    "INSERT INTO episodes(id, agent_id, ts, labeled, label_source, model_version, reward, "
                    "seq, doc, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc["id"],
                        doc["agent_id"],
                        to_micros(Episode.model_validate(doc).timestamp),
                        1 if label else 0,
                        label["source"] if isinstance(label, dict) else None,
                        None,
                        doc["reward"],
                        seq,
                        json.dumps(body, separators=(",", ":")),
                        json.dumps(label, separators=(",", ":")) if label else None,
                    ),
                )
            conn.execute("UPDATE episode_counters SET value = 3")
        old.close()
        return SqliteEpisodeStore(SqliteDatabase(path))
    from lightning.adapters.cosmos.episodes import CosmosEpisodeStore, to_micros

    store = CosmosEpisodeStore.in_account(cosmos_account(request.getfixturevalue("cosmos_settings")()))
    for doc in LEGACY.values():
        ts_us = to_micros(Episode.model_validate(doc).timestamp)
        label = doc["label"]
        item = {
            **doc,
            "ts_us": ts_us,
            "order_key": f"{ts_us:020d}|{doc['id']}",
            "label_source": label["source"] if isinstance(label, dict) else None,
        }
        store._c.create_item(item)  # the item exactly as the old code wrote it
    return store


def test_an_old_document_reads_with_a_one_label_history(legacy_store: EpisodeStore) -> None:
    person = legacy_store.get("old-human")
    assert person.labels == [Label.model_validate(LEGACY_LABEL)]
    assert person.label == person.labels[0]
    assert (person.reward, person.labeled, person.human_labeled) == (0.85, True, True)
    judged_before = legacy_store.get("old-auto")
    assert [label.reason for label in judged_before.labels] == ["uncertain"]
    bare = legacy_store.get("old-bare")
    assert (bare.labels, bare.label, bare.labeled) == ([], None, False)

    assert legacy_store.count(EpisodeQuery(human_labeled=True)) == 1
    assert sorted(e.id for e in legacy_store.query(EpisodeQuery(human_labeled=False))) == [
        "old-auto",
        "old-bare",
    ]
    assert legacy_store.count(EpisodeQuery(corrected=False)) == 3

    after = legacy_store.save_label("old-human", judged(0.1), expected_etag=person.etag)
    assert [label.source for label in after.labels] == ["human", "auto"]
    assert after.reward == 0.85
    batched = LabelWrite(
        episode_id="old-auto",
        agent_id=AGENT,
        label=judged(0.9, reason="again"),
        expected_etag=judged_before.etag,
    )
    assert legacy_store.save_labels([batched]).written == ["old-auto"]
    assert [label.reason for label in legacy_store.get("old-auto").labels] == ["uncertain", "again"]
    corrected = legacy_store.save_label("old-bare", correction())
    assert [label.source for label in corrected.labels] == ["human"]
    assert legacy_store.count(EpisodeQuery(corrected=True)) == 1


def test_old_documents_take_their_place_in_the_review_order(legacy_store: EpisodeStore) -> None:
    """old-auto: 0.35 (score 0.7) + 0.25 (wrong tool) + 0.2 (no expected tool) = 0.8; old-bare 0.3."""
    migrate = getattr(legacy_store, "migrate_items", None)
    if migrate is not None:  # Cosmos rewrites old items on request (SQLite migrated on open)
        assert migrate() == 3
        assert migrate() == 0
    query = EpisodeQuery(agent_id=AGENT, order="review", human_labeled=False)
    assert [e.id for e in legacy_store.query(query)] == ["old-auto", "old-bare"]
    assert legacy_store.get("old-human").labels == [Label.model_validate(LEGACY_LABEL)]

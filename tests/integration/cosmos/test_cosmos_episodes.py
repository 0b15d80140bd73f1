"""CosmosEpisodeStore on the local Cosmos DB emulator: the Cosmos-specific behaviour.

The behaviour every EpisodeStore shares is in ``tests/integration/contracts/test_episode_store_contract.py``
(which runs this store too); here: paging across many pages, the stored item shape, etag conflicts on
the wire, and the ``_ts``-based ``changes_since``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lightning.adapters.cosmos.client import EPISODES, container
from lightning.adapters.cosmos.episodes import CosmosEpisodeStore
from lightning.bootstrap import cosmos_account
from lightning.domain.episode import Action, Episode, Label, State
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import EpisodeQuery, LabelWrite

pytestmark = pytest.mark.cosmos

T0 = datetime(2026, 2, 7, 10, 30, tzinfo=UTC)


def _episode(i: int, agent: str = "autonomous-agent", **kw: Any) -> Episode:
    return Episode(
        id=f"episode-{i:04d}",
        agent_id=agent,
        timestamp=T0 + timedelta(seconds=i, microseconds=(i % 3) * 250_000),
        state=State(query=f"Analyze customer churn for Q{i % 4 + 1} 2025", context={"user": "a@contoso.com"}),
        action=Action(tool="analyze_churn", arguments={"period": "Q4 2025"}),
        result={"churn_rate": 0.12},
        **kw,
    )


def _label(score: float, source: str = "human") -> Label:
    return Label(source=source, score=score, reason="checked", labeled_by="ana")  # type: ignore[arg-type]


@pytest.fixture
def store(cosmos_settings: Callable[..., Any]) -> CosmosEpisodeStore:
    return CosmosEpisodeStore(container(cosmos_account(cosmos_settings()), EPISODES), page_size=7)


def test_item_has_the_workshop_shape_plus_sort_fields(store: CosmosEpisodeStore) -> None:
    assert store.add([_episode(1)]) == 1
    item = next(iter(store._c.query_items("SELECT * FROM c", enable_cross_partition_query=True)))
    for field in ("id", "agent_id", "timestamp", "state", "action", "result", "reward", "labeled"):
        assert field in item
    assert item["timestamp"].endswith("Z")
    assert item["order_key"].endswith("|episode-0001")
    assert item["labeled"] is False
    assert item["reward"] is None


def test_query_pages_through_continuation_tokens_in_exact_order(store: CosmosEpisodeStore) -> None:
    episodes = [_episode(i, agent="autonomous-agent" if i % 2 else "approval-agent") for i in range(40)]
    assert store.add(episodes) == 40
    assert store.add(episodes[:5]) == 0  # insert-if-absent
    newest = [e.id for e in store.query(EpisodeQuery())]
    assert newest == [e.id for e in reversed(episodes)]  # 40 items over pages of 7
    oldest = [e.id for e in store.query(EpisodeQuery(agent_id="autonomous-agent", order="oldest"))]
    assert oldest == [e.id for e in episodes if e.agent_id == "autonomous-agent"]
    assert [e.id for e in store.query(EpisodeQuery(limit=3))] == [e.id for e in reversed(episodes)][:3]
    assert store.count(EpisodeQuery(agent_id="approval-agent")) == 20
    assert store.count(EpisodeQuery(limit=5)) == 5
    window = EpisodeQuery(since=episodes[10].timestamp, until=episodes[20].timestamp, order="oldest")
    assert [e.id for e in store.query(window)] == [e.id for e in episodes[10:20]]


def test_label_with_a_stale_etag_is_a_conflict(store: CosmosEpisodeStore) -> None:
    store.add([_episode(1)])
    read = store.get("episode-0001")
    assert read.etag
    first = store.save_label("episode-0001", _label(0.9), expected_etag=read.etag)
    assert first.labeled
    assert first.reward == 0.9
    assert first.etag != read.etag
    with pytest.raises(Conflict):
        store.save_label("episode-0001", _label(0.1, "auto"), expected_etag=read.etag)
    assert store.get("episode-0001", agent_id="autonomous-agent").reward == 0.9
    outcome = store.save_labels(
        [
            LabelWrite(
                episode_id="episode-0001",
                agent_id="autonomous-agent",
                label=_label(0.2),
                expected_etag=read.etag,
            ),
            LabelWrite(episode_id="episode-9999", agent_id="autonomous-agent", label=_label(0.2)),
            LabelWrite(
                episode_id="episode-0001",
                agent_id="autonomous-agent",
                label=_label(0.3),
                expected_etag=first.etag,
            ),
        ]
    )
    assert (outcome.conflicts, outcome.missing, outcome.written) == (
        ["episode-0001"],
        ["episode-9999"],
        ["episode-0001"],
    )
    assert store.query(EpisodeQuery(labeled=True, min_reward=0.25)).__next__().reward == 0.3


def test_missing_ids_are_not_found(store: CosmosEpisodeStore) -> None:
    store.add([_episode(1)])
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.get("episode-0001", agent_id="approval-agent")
    with pytest.raises(NotFound):
        store.save_label("nope", _label(0.5))
    with pytest.raises(NotFound):
        store.save_label("nope", _label(0.5), agent_id="autonomous-agent")


def _server_seconds(store: CosmosEpisodeStore) -> dict[str, int]:
    """Each episode's ``_ts``: the server's clock decides which second a write lands in, not the test's."""
    items = store._c.query_items("SELECT c.id, c._ts FROM c", enable_cross_partition_query=True)
    return {item["id"]: int(item["_ts"]) for item in items}


def _add_until_a_second_holds_two(store: CosmosEpisodeStore) -> dict[str, int]:
    """Write episodes until two share a second, so paging must keep a crowded second whole.

    Six writes nearly always share one; on a slow machine they may straddle seconds, and only a
    machine that needed over a second per write would need a second round."""
    written = 0
    for _ in range(5):
        store.add([_episode(i) for i in range(written, written + 6)])
        written += 6
        stamps = _server_seconds(store)
        if max(Counter(stamps.values()).values()) >= 2:
            return stamps
    raise AssertionError(f"no two of {written} writes landed in the same second: {stamps}")


def _at(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def test_changes_since_returns_settled_seconds_once(cosmos_settings: Callable[..., Any]) -> None:
    clock = {"now": datetime.now(UTC)}
    store = CosmosEpisodeStore(
        container(cosmos_account(cosmos_settings()), EPISODES), settle_seconds=5, now=lambda: clock["now"]
    )
    stamps = _add_until_a_second_holds_two(store)
    seconds = sorted(set(stamps.values()))
    everything = sorted(stamps)

    # A second is reported only once settle_seconds have passed after it.
    clock["now"] = _at(seconds[0] + 4)
    assert store.changes_since(0).episodes == []
    clock["now"] = _at(seconds[-1] + 4)
    unsettled = store.changes_since(0, limit=100)
    assert sorted(e.id for e in unsettled.episodes) == sorted(
        i for i, ts in stamps.items() if ts < seconds[-1]
    )
    clock["now"] = _at(seconds[-1] + 5)
    batch = store.changes_since(0, limit=100)
    assert sorted(e.id for e in batch.episodes) == everything
    assert batch.cursor == seconds[-1]
    again = store.changes_since(batch.cursor)
    assert again.episodes == []
    assert again.cursor == batch.cursor

    # A batch limit that cuts into one second returns the whole second rather than split it.
    for limit in (1, 2):
        cursor, pages = 0, []
        while (page := store.changes_since(cursor, limit=limit)).episodes:
            pages.append(page)
            cursor = page.cursor
        assert sorted(e.id for p in pages for e in p.episodes) == everything  # each episode once
        for page in pages:
            page_seconds = {stamps[e.id] for e in page.episodes}
            assert {e.id for e in page.episodes} == {i for i, ts in stamps.items() if ts in page_seconds}
            assert page.cursor == max(page_seconds)
            assert len(page.episodes) <= limit or len(page_seconds) == 1
        if limit == 1:
            assert any(len(page.episodes) > 1 for page in pages)  # the crowded second came whole

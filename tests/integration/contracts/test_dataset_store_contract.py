"""The DatasetStore contract: the in-memory fake and SQLite (later Cosmos) behave the same.

Each test gets a fresh, empty store; several handles on one SQLite file act like several processes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.bootstrap import cosmos_account
from lightning.domain.dataset import DatasetFile, DatasetManifest, RewardStats
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.datasets import DatasetStore
from tests.fakes.datasets import InMemoryDatasetStore

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], DatasetStore]:
    if request.param == "memory":
        shared = InMemoryDatasetStore()
        return lambda: shared
    if request.param == "cosmos":
        from lightning.adapters.cosmos.datasets import CosmosDatasetStore

        settings = request.getfixturevalue("cosmos_settings")()
        return lambda: CosmosDatasetStore.in_account(cosmos_account(settings))
    path = tmp_path / "contract.db"
    return lambda: SqliteDatasetStore(SqliteDatabase(path))


@pytest.fixture
def store(backend: Callable[[], DatasetStore]) -> DatasetStore:
    return backend()


def manifest(
    name: str = "autonomous-agent-v1",
    *,
    agent_id: str = "autonomous-agent",
    content: str = "a" * 64,
    created_at: datetime = T0,
    ids: int = 3,
) -> DatasetManifest:
    return DatasetManifest(
        name=name,
        agent_id=agent_id,
        episode_ids=[f"ep-{i}" for i in range(ids)],
        validation_episode_ids=["ep-v1"],
        filters={"min_reward": 0.7, "trigger": "cli"},
        files=[
            DatasetFile(
                split="train", uri="file:///x/train.jsonl", sha256="b" * 64, examples=ids, bytes=10, tokens=99
            )
        ],
        content_sha256=content,
        reward=RewardStats(avg=0.82, min=0.7, max=0.98),
        token_count=99,
        tool_distribution={"analyze_churn": 3},
        dropped={"duplicate": 1},
        redactions={"email": 2},
        notes=["a note"],
        system_prompt="You are ...",
        tools=[{"type": "function", "function": {"name": "analyze_churn", "parameters": {}}}],
        base_model="gpt-4o-mini",
        created_at=created_at,
    )


def test_put_then_get_round_trips_everything(store: DatasetStore) -> None:
    original = manifest()
    stored = store.put(original)

    got = store.get(original.name)
    assert got.model_dump() == original.model_dump()
    assert stored.model_dump() == original.model_dump()
    assert got.etag is not None
    assert got.episode_count == 4


def test_missing_names(store: DatasetStore) -> None:
    assert store.find("nope") is None
    assert store.latest("autonomous-agent") is None
    with pytest.raises(NotFound):
        store.get("nope")


def test_same_content_returns_the_stored_manifest(store: DatasetStore) -> None:
    first = store.put(manifest(created_at=T0))
    again = store.put(manifest(created_at=T0 + timedelta(hours=1)))
    assert again.created_at == first.created_at
    assert len(store.list()) == 1


def test_other_content_is_a_conflict_unless_overwrite(store: DatasetStore) -> None:
    store.put(manifest(content="a" * 64))
    with pytest.raises(Conflict) as raised:
        store.put(manifest(content="c" * 64))
    assert raised.value.ident == "autonomous-agent-v1"
    assert store.get("autonomous-agent-v1").content_sha256 == "a" * 64

    replaced = store.put(manifest(content="c" * 64, ids=5), overwrite=True)
    assert replaced.content_sha256 == "c" * 64
    assert store.get("autonomous-agent-v1").episode_ids == [f"ep-{i}" for i in range(5)]
    assert replaced.etag != store.put(manifest(content="d" * 64), overwrite=True).etag


def test_list_is_newest_first_and_filters_by_agent(store: DatasetStore) -> None:
    store.put(manifest("a-1", created_at=T0))
    store.put(manifest("a-2", created_at=T0 + timedelta(hours=2)))
    store.put(manifest("b-1", agent_id="approval-agent", created_at=T0 + timedelta(hours=1)))

    assert [m.name for m in store.list()] == ["a-2", "b-1", "a-1"]
    assert [m.name for m in store.list(agent_id="autonomous-agent")] == ["a-2", "a-1"]
    assert [m.name for m in store.list(agent_id="approval-agent")] == ["b-1"]
    latest = store.latest("autonomous-agent")
    assert latest is not None
    assert latest.name == "a-2"


def test_large_id_lists_survive(store: DatasetStore) -> None:
    store.put(manifest(ids=50_000))
    assert len(store.get("autonomous-agent-v1").episode_ids) == 50_000


def test_handles_share_state(backend: Callable[[], DatasetStore]) -> None:
    backend().put(manifest())
    assert backend().get("autonomous-agent-v1").name == "autonomous-agent-v1"

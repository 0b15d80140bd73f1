"""The RunStore contract: every implementation (in-memory fake, SQLite; Cosmos later) passes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightning.bootstrap import cosmos_account
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.training import RunEvent, RunMetrics, TrainingRun
from lightning.ports.runs import RunStore

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "memory":
        from tests.fakes.runs import InMemoryRunStore

        yield InMemoryRunStore()
        return
    if request.param == "cosmos":
        from lightning.adapters.cosmos.runs import CosmosRunStore

        yield CosmosRunStore.in_account(cosmos_account(request.getfixturevalue("cosmos_settings")()))
        return
    from lightning.adapters.sqlite.db import SqliteDatabase
    from lightning.adapters.sqlite.runs import SqliteRunStore

    db = SqliteDatabase(tmp_path / "runs.db")
    yield SqliteRunStore(db)
    db.close()


def make(n: int, *, agent: str = "autonomous-agent", key: str | None = None) -> TrainingRun:
    return TrainingRun(
        id=f"run-{n}",
        agent_id=agent,
        dataset_name="autonomous-agent-v1",
        dataset_sha256="abc",
        base_model="gpt-4o-mini",
        provider="local",
        idempotency_key=key or f"key-{n}",
        created_at=T0 + timedelta(minutes=n),
    )


def test_create_then_get_round_trips_every_field(store: RunStore) -> None:
    run = (
        make(1)
        .advance("uploading", training_file_id="file-1")
        .model_copy(
            update={
                "events": [RunEvent(created_at=T0, message="Step 1/10", type="metrics", data={"step": 1})],
                "metrics": RunMetrics(step=1, total_steps=10, train_loss=0.5, extra={"acc": 0.9}),
            }
        )
    )
    stored, created = store.create_or_get(run)
    assert created
    assert stored.etag is not None
    got = store.get("run-1")
    assert got.model_dump() == run.model_dump()
    assert got.etag == stored.etag


def test_same_idempotency_key_returns_the_existing_run(store: RunStore) -> None:
    first, created = store.create_or_get(make(1, key="same"))
    second, created_again = store.create_or_get(make(2, key="same"))
    assert created
    assert not created_again
    assert second.id == first.id == "run-1"
    assert [r.id for r in store.list()] == ["run-1"]
    assert store.find_by_key("same") is not None
    assert store.find_by_key("other") is None


def test_update_with_current_etag_then_stale_etag_conflicts(store: RunStore) -> None:
    run, _ = store.create_or_get(make(1))
    moved = store.update(run.advance("uploading"))
    assert moved.etag != run.etag
    assert store.get(run.id).state == "uploading"
    with pytest.raises(Conflict):
        store.update(run.advance("failed", error="stale writer"))
    assert store.get(run.id).state == "uploading"


def test_get_by_job_id_and_not_found(store: RunStore) -> None:
    run, _ = store.create_or_get(make(1))
    store.update(run.advance("queued", job_id="ftjob-1"))
    assert store.get_by_job_id("ftjob-1").id == "run-1"
    with pytest.raises(NotFound):
        store.get_by_job_id("ftjob-2")
    with pytest.raises(NotFound):
        store.get("run-404")
    with pytest.raises(NotFound):
        store.update(make(9))


def test_a_job_id_belongs_to_one_run(store: RunStore) -> None:
    one, _ = store.create_or_get(make(1))
    two, _ = store.create_or_get(make(2))
    store.update(one.advance("queued", job_id="ftjob-1"))
    with pytest.raises(Conflict):
        store.update(two.advance("queued", job_id="ftjob-1"))


def test_list_is_newest_first_filtered_and_limited(store: RunStore) -> None:
    for n, agent in enumerate(["a", "b", "a", "a"]):
        store.create_or_get(make(n, agent=agent))
    assert [r.id for r in store.list()] == ["run-3", "run-2", "run-1", "run-0"]
    assert [r.id for r in store.list(agent_id="a", limit=2)] == ["run-3", "run-2"]
    assert store.list(agent_id="nobody") == []


def test_concurrent_updates_from_one_read_let_exactly_one_win(store: RunStore) -> None:
    run, _ = store.create_or_get(make(1))
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.update(run.advance("uploading", training_file_id=f"file-{i}"))
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]

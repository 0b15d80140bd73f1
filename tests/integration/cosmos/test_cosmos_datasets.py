"""CosmosDatasetStore on the emulator: manifests too big for one Cosmos item (2 MB) keep every id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from lightning.adapters.cosmos.datasets import CHUNK_IDS, CosmosDatasetStore
from lightning.bootstrap import cosmos_account
from lightning.domain.dataset import DatasetManifest, RewardStats

pytestmark = pytest.mark.cosmos


def _manifest(n_train: int, n_validation: int, content: str = "a") -> DatasetManifest:
    return DatasetManifest(
        name="autonomous-agent-big",
        agent_id="autonomous-agent",
        episode_ids=[f"episode-{i:08d}-5f0c6a1e-8d1b-4a43-9a51-2a4b1c9e7d3f" for i in range(n_train)],
        validation_episode_ids=[f"val-{i:08d}-5f0c6a1e-8d1b-4a43-9a51" for i in range(n_validation)],
        content_sha256=content * 64,
        reward=RewardStats(avg=0.8, min=0.7, max=0.9),
        token_count=1,
        created_at=datetime(2026, 2, 7, tzinfo=UTC),
    )


def test_fifty_thousand_long_ids_round_trip_in_chunks(cosmos_settings: Callable[..., Any]) -> None:
    store = CosmosDatasetStore.in_account(cosmos_account(cosmos_settings()))
    big = _manifest(45_000, 5_000)  # ~2.7 MB of ids: more than one item may hold
    stored = store.put(big)
    assert stored.episode_ids == big.episode_ids
    again = store.get(big.name)
    assert again.episode_ids == big.episode_ids
    assert again.validation_episode_ids == big.validation_episode_ids
    [listed] = store.list(agent_id="autonomous-agent")
    assert listed.episode_count == 50_000
    chunks = list(
        store._c.query_items(
            "SELECT c.id FROM c WHERE c.doc_type = 'dataset_ids'", enable_cross_partition_query=True
        )
    )
    assert len(chunks) == 45_000 // CHUNK_IDS + 1 + 1

    # Overwriting with a small manifest leaves no stale chunks behind.
    small = _manifest(20, 2, content="b")
    assert store.put(small, overwrite=True).episode_ids == small.episode_ids
    assert store.get(small.name).episode_count == 22
    assert (
        list(
            store._c.query_items(
                "SELECT c.id FROM c WHERE c.doc_type = 'dataset_ids'", enable_cross_partition_query=True
            )
        )
        == []
    )

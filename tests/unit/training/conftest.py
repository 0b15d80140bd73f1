"""Fixtures for the training service unit tests: fakes of every port, and a built dataset."""

from __future__ import annotations

import hashlib
import json

import pytest

from lightning.domain.dataset import DatasetFile, DatasetManifest, RewardStats
from lightning.ports.bundles import TrainingPorts
from lightning.ports.queue import Queue
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.queue import InMemoryQueue
from tests.fakes.runs import InMemoryRunStore


def bundle(
    runs: InMemoryRunStore,
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    provider: FakeFineTuneProvider,
    queue: Queue | None = None,
) -> TrainingPorts:
    """The training use cases' ports from the fixtures' fakes."""
    return TrainingPorts(
        runs=runs, datasets=datasets, blobs=blobs, provider=provider, queue=queue or InMemoryQueue()
    )


EXAMPLE = {"messages": [{"role": "user", "content": "Analyze churn"}, {"role": "assistant", "content": "ok"}]}


def put_dataset(
    datasets: InMemoryDatasetStore,
    blobs: InMemoryBlobStore,
    *,
    name: str = "autonomous-agent-v1",
    agent_id: str = "autonomous-agent",
    validation: bool = True,
    fmt: str = "jsonl",
) -> DatasetManifest:
    files = []
    for split, count in (("train", 8), ("validation", 2)):
        if split == "validation" and not validation:
            continue
        data = (json.dumps(EXAMPLE) + "\n").encode() * count
        blobs.blobs[f"{name}/{split}.jsonl"] = data
        files.append(
            DatasetFile(
                split=split,  # type: ignore[arg-type]
                uri=f"mem://{name}/{split}.jsonl",
                sha256=hashlib.sha256(data).hexdigest(),
                examples=count,
                bytes=len(data),
                tokens=20 * count,
            )
        )
    manifest = DatasetManifest(
        name=name,
        agent_id=agent_id,
        format=fmt,  # type: ignore[arg-type]
        files=files,
        content_sha256=hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest(),
        reward=RewardStats(avg=0.9, min=0.7, max=1.0),
        token_count=200,
    )
    return datasets.put(manifest)


@pytest.fixture
def runs() -> InMemoryRunStore:
    return InMemoryRunStore()


@pytest.fixture
def blobs() -> InMemoryBlobStore:
    return InMemoryBlobStore()


@pytest.fixture
def datasets(blobs: InMemoryBlobStore) -> InMemoryDatasetStore:
    store = InMemoryDatasetStore()
    put_dataset(store, blobs)
    return store


@pytest.fixture
def provider() -> FakeFineTuneProvider:
    return FakeFineTuneProvider()

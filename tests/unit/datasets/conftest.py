"""Fixtures for dataset service tests: fakes for every port, the bundled agents, the real tokenizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.files.writer import LocalDatasetWriter
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.tokens import O200kTokenCounter
from lightning.domain.episode import Episode
from lightning.ports.bundles import DatasetPorts
from lightning.services.datasets import BuildOutcome, BuildRequest, build_dataset
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.fakes.golden import InMemoryGoldenStore
from tests.fakes.queue import InMemoryQueue


class Ports:
    def __init__(self, work_dir: Path) -> None:
        self.episodes = InMemoryEpisodeStore()
        self.datasets = InMemoryDatasetStore()
        self.blobs = InMemoryBlobStore()
        self.agents = YamlAgentRegistry()
        self.tokens = O200kTokenCounter()
        self.queue = InMemoryQueue()
        self.golden = InMemoryGoldenStore()
        self.work_dir = work_dir

    def add(self, episodes: Sequence[Episode]) -> None:
        self.episodes.add(episodes)

    def bundle(self, *, parallel: bool | None = None) -> DatasetPorts:
        return DatasetPorts(
            agents=self.agents,
            episodes=self.episodes,
            datasets=self.datasets,
            blobs=self.blobs,
            tokens=self.tokens,
            writer=LocalDatasetWriter(root=self.work_dir, parallel=parallel),
            queue=self.queue,
            golden=self.golden,
        )

    def build(self, *, parallel: bool | None = None, **fields: Any) -> BuildOutcome:
        fields.setdefault("agent_id", "autonomous-agent")
        fields.setdefault("name", "autonomous-agent-v1")
        return build_dataset(BuildRequest(**fields), self.bundle(parallel=parallel))

    def lines(self, uri: str) -> list[bytes]:
        return list(self.blobs.open_lines(uri))


@pytest.fixture
def ports(tmp_path: Path) -> Ports:
    return Ports(tmp_path / "work")


@pytest.fixture
def count() -> Callable[[str], int]:
    return O200kTokenCounter().count

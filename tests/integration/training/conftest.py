"""Fixtures for the training integration tests: the fault-injecting fine-tuning server, settings
pointing at it, and a dataset stored in the real SQLite store + local blob store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.config import Settings, get_settings
from lightning.domain.dataset import DatasetFile, DatasetManifest, RewardStats
from tests.integration.training.ft_server import FineTuneServer

EXAMPLE = {
    "messages": [
        {"role": "system", "content": "You are an analytics agent."},
        {"role": "user", "content": "Analyze customer churn for Q4 2025"},
        {"role": "assistant", "content": "Churn fell 2 points."},
    ]
}


@pytest.fixture
def ft_server() -> Iterator[FineTuneServer]:
    server = FineTuneServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(ft_server: FineTuneServer, clean_env: Path) -> Settings:
    return get_settings(lightning_trainer="local", lightning_model_server=ft_server.base_url)


def store_dataset(
    settings: Settings,
    *,
    name: str = "autonomous-agent-v1",
    agent_id: str = "autonomous-agent",
    train_examples: int = 12,
    validation_examples: int = 3,
    lines: list[str] | None = None,
) -> DatasetManifest:
    """A built dataset, stored the way build-dataset stores it (files in the blob store, manifest in SQLite)."""
    blobs = LocalBlobStore(settings.datasets_dir)
    staging = settings.lightning_home / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    files = []
    for split, count in (("train", train_examples), ("validation", validation_examples)):
        if count == 0:
            continue
        path = staging / f"{split}.jsonl"
        chosen = lines or [json.dumps(EXAMPLE)] * (train_examples + validation_examples)
        chosen = (
            chosen[:train_examples] if split == "train" else chosen[train_examples : train_examples + count]
        )
        path.write_text("".join(line + "\n" for line in chosen))
        data = path.read_bytes()
        uri = blobs.upload_file(path, f"{name}/{split}.jsonl")
        files.append(
            DatasetFile(
                split=split,  # type: ignore[arg-type]
                uri=uri,
                sha256=hashlib.sha256(data).hexdigest(),
                examples=count,
                bytes=len(data),
                tokens=30 * count,
            )
        )
    manifest = DatasetManifest(
        name=name,
        agent_id=agent_id,
        files=files,
        content_sha256=hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest(),
        reward=RewardStats(avg=0.9, min=0.7, max=1.0),
        token_count=sum(f.tokens for f in files),
    )
    return SqliteDatasetStore.at(settings.sqlite_path).put(manifest)


@pytest.fixture
def dataset(settings: Settings) -> DatasetManifest:
    return store_dataset(settings)


@pytest.fixture
def runs(settings: Settings) -> SqliteRunStore:
    return SqliteRunStore.at(settings.sqlite_path)

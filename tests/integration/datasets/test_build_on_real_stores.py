"""build_dataset on the real adapters: SQLite episodes + manifests, local folder and Azure Blob (Azurite)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.files.writer import LocalDatasetWriter
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.adapters.tokens import O200kTokenCounter
from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.domain.dataset import DatasetManifest
from lightning.domain.errors import ConfigurationError
from lightning.domain.finetune_format import validate_chat_example
from lightning.ports.bundles import DatasetPorts
from lightning.ports.datasets import BlobStore
from lightning.services.datasets import BuildOutcome, BuildRequest, build_dataset
from tests.fakes.datasets import labeled_episode
from tests.fakes.golden import InMemoryGoldenStore
from tests.fakes.queue import InMemoryQueue
from tests.plugins.azurite import Azurite
from tests.unit.datasets.openai_checker import check_chat_lines


def _build(tmp_path: Path, blobs: BlobStore, n: int = 200) -> tuple[SqliteDatasetStore, BuildOutcome]:
    db = tmp_path / "lightning.db"
    episodes = SqliteEpisodeStore.at(db)
    episodes.add([labeled_episode(i, reward=0.75 + (i % 5) * 0.05) for i in range(n)])
    datasets = SqliteDatasetStore.at(db)
    outcome = build_dataset(
        BuildRequest(agent_id="autonomous-agent", name="autonomous-agent-v1", validation_split=0.2),
        DatasetPorts(
            agents=YamlAgentRegistry(),
            episodes=episodes,
            datasets=datasets,
            blobs=blobs,
            tokens=O200kTokenCounter(),
            writer=LocalDatasetWriter(root=tmp_path / "work"),
            queue=InMemoryQueue(),
            golden=InMemoryGoldenStore(),
        ),
    )
    return datasets, outcome


def _check_files(blobs: BlobStore, manifest: DatasetManifest) -> None:
    for file in manifest.files:
        lines = list(blobs.open_lines(file.uri))
        assert len(lines) == file.examples
        assert check_chat_lines(lines) == {}
        assert all(validate_chat_example(json.loads(line)) == [] for line in lines)


def test_local_folder(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "datasets")
    datasets, outcome = _build(tmp_path, blobs)
    manifest = datasets.get("autonomous-agent-v1")
    assert manifest.model_dump() == outcome.manifest.model_dump()
    assert manifest.episode_count == 200
    _check_files(blobs, manifest)
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.azurite
def test_azure_blob_on_azurite(tmp_path: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_BLOB", "azure")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("DATASETS_CONTAINER", "datasets-it")
    blobs = Container(get_settings()).blobs  # wired exactly as the CLI wires it
    datasets, _outcome = _build(tmp_path, blobs)
    manifest = datasets.get("autonomous-agent-v1")
    assert all(f.uri.startswith(azurite.blob_endpoint + "/datasets-it/") for f in manifest.files)
    _check_files(blobs, manifest)
    copy = blobs.download_file(manifest.files[0].uri, tmp_path / "copy.jsonl")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == manifest.files[0].sha256


def test_azure_blob_needs_an_account_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_BLOB", "azure")
    with pytest.raises(ConfigurationError, match="AZURE_STORAGE_ACCOUNT_URL"):
        _ = Container(get_settings()).blobs


def test_azure_blob_uses_entra_id_with_an_account_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import DefaultAzureCredential

    monkeypatch.setenv("LIGHTNING_BLOB", "azure")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net")
    blobs = Container(get_settings()).blobs
    assert blobs.container_url == "https://acct.blob.core.windows.net/datasets"  # type: ignore[attr-defined]
    assert isinstance(blobs._service.credential, DefaultAzureCredential)  # type: ignore[attr-defined]  # no key, no token fetched yet

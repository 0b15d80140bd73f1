"""DatasetStore (manifests) and BlobStore (dataset files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from lightning.domain.dataset import DatasetManifest


class DatasetStore(Protocol):
    def get(self, name: str) -> DatasetManifest:
        """The manifest, or ``NotFound``."""
        ...

    def find(self, name: str) -> DatasetManifest | None: ...

    def put(self, manifest: DatasetManifest, *, overwrite: bool = False) -> DatasetManifest:
        """Commit a manifest (the last step of a build). ``Conflict`` if the name exists with other content."""
        ...

    def list(self, *, agent_id: str | None = None) -> list[DatasetManifest]:
        """Newest first."""
        ...

    def latest(self, agent_id: str) -> DatasetManifest | None: ...


class BlobStore(Protocol):
    def upload_file(self, path: Path, blob_name: str) -> str:
        """Store a local file under ``blob_name``; returns its URI. Visible only once complete."""
        ...

    def download_file(self, uri: str, path: Path) -> Path: ...

    def open_lines(self, uri: str) -> Iterator[bytes]:
        """Stream a stored file line by line."""
        ...

    def exists(self, uri: str) -> bool: ...

    def delete(self, uri: str) -> None: ...

"""LocalBlobStore: dataset files in a local folder (``$LIGHTNING_HOME/datasets``), the default blob store.

Built by the Container (``LocalBlobStore(root)``). URIs are ``file://`` URLs.
An upload is visible only once complete: the file is linked (same disk) or copied
to a hidden temporary name next to its target, then renamed over it atomically.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from lightning.domain.errors import InvalidInput, NotFound, ProviderError


def _check_blob_name(blob_name: str) -> str:
    parts = blob_name.split("/")
    if not blob_name or blob_name.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise InvalidInput(
            f"blob name {blob_name!r} must be a relative path without '.', '..' or empty parts"
        )
    return blob_name


class LocalBlobStore:
    """Files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise InvalidInput(f"{uri!r} is not a file:// URI of the local dataset store")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput(f"{uri!r} is outside the local dataset store {self.root}")
        return path

    def upload_file(self, path: Path, blob_name: str) -> str:
        target = self.root / _check_blob_name(blob_name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(
                f"cannot write datasets under {self.root}: {exc.strerror}; check LIGHTNING_HOME is writable",
                provider="local",
            ) from None
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            try:
                os.link(path, staging)  # same disk: no copy of a possibly huge file
            except OSError:
                shutil.copyfile(path, staging)
            os.replace(staging, target)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise ProviderError(
                f"cannot store {blob_name} under {self.root}: {exc}", provider="local"
            ) from None
        return target.as_uri()

    def download_file(self, uri: str, path: Path) -> Path:
        source = self._path(uri)
        if not source.is_file():
            raise NotFound("blob", uri)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return path

    def open_lines(self, uri: str) -> Iterator[bytes]:
        source = self._path(uri)
        if not source.is_file():
            raise NotFound("blob", uri)
        return self._lines(source)

    @staticmethod
    def _lines(source: Path) -> Iterator[bytes]:
        with open(source, "rb") as handle:
            yield from handle

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        path.unlink(missing_ok=True)
        # drop now-empty folders up to the root (dataset/<hash>/)
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

"""The BlobStore contract: the in-memory fake, the local folder and Azure Blob Storage (on Azurite)
behave the same. Each test gets a fresh, empty store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lightning.adapters.blob.local import LocalBlobStore
from lightning.domain.errors import InvalidInput, NotFound
from lightning.ports.datasets import BlobStore
from tests.fakes.datasets import InMemoryBlobStore


@pytest.fixture(params=["memory", "local", pytest.param("azurite", marks=pytest.mark.azurite)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return InMemoryBlobStore()
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    from azure.storage.blob import BlobServiceClient

    from lightning.adapters.blob.azure import AzureBlobStore

    azurite = request.getfixturevalue("azurite")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return AzureBlobStore(service, f"contract-{uuid.uuid4().hex[:12]}")


def _file(tmp_path: Path, content: bytes, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_upload_then_read_back_lines_and_file(blobs: BlobStore, tmp_path: Path) -> None:
    content = b'{"a":1}\n{"b":"\xc3\xa9"}\n{"c":3}\n'
    uri = blobs.upload_file(_file(tmp_path, content), "ds-1/abc/train.jsonl")

    assert blobs.exists(uri)
    assert list(blobs.open_lines(uri)) == [b'{"a":1}\n', b'{"b":"\xc3\xa9"}\n', b'{"c":3}\n']
    copy = blobs.download_file(uri, tmp_path / "out" / "copy.jsonl")
    assert copy.read_bytes() == content


def test_large_file_streams_in_order(blobs: BlobStore, tmp_path: Path) -> None:
    lines = [f'{{"i":{i},"pad":"{"x" * 200}"}}\n'.encode() for i in range(20_000)]  # ~4.3 MB: many chunks
    uri = blobs.upload_file(_file(tmp_path, b"".join(lines)), "big/train.jsonl")

    seen = 0
    for expected, got in zip(lines, blobs.open_lines(uri), strict=True):
        assert got == expected
        seen += 1
    assert seen == len(lines)


def test_last_line_without_newline_is_kept(blobs: BlobStore, tmp_path: Path) -> None:
    uri = blobs.upload_file(_file(tmp_path, b"one\ntwo"), "x/y.jsonl")
    assert list(blobs.open_lines(uri)) == [b"one\n", b"two"]


def test_upload_replaces_same_name(blobs: BlobStore, tmp_path: Path) -> None:
    first = blobs.upload_file(_file(tmp_path, b"old\n", "a"), "n/file.jsonl")
    second = blobs.upload_file(_file(tmp_path, b"new\n", "b"), "n/file.jsonl")
    assert first == second
    assert list(blobs.open_lines(second)) == [b"new\n"]


def test_delete_is_idempotent_and_missing_blobs_are_not_found(blobs: BlobStore, tmp_path: Path) -> None:
    uri = blobs.upload_file(_file(tmp_path, b"x\n"), "gone/train.jsonl")
    blobs.delete(uri)
    blobs.delete(uri)

    assert not blobs.exists(uri)
    with pytest.raises(NotFound):
        list(blobs.open_lines(uri))
    with pytest.raises(NotFound):
        blobs.download_file(uri, tmp_path / "never.jsonl")


@pytest.mark.parametrize("name", ["../escape.jsonl", "/abs.jsonl", "a/../b.jsonl", ""])
def test_blob_names_cannot_escape(blobs: BlobStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        blobs.upload_file(_file(tmp_path, b"x\n"), name)

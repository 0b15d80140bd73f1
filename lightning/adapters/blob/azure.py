"""AzureBlobStore: dataset files in Azure Blob Storage (``LIGHTNING_BLOB=azure``).

Built by the Container (``AzureBlobStore.connect``). Authenticates with Entra ID
(``DefaultAzureCredential``) against ``AZURE_STORAGE_ACCOUNT_URL``; a connection string
(``AZURE_STORAGE_CONNECTION_STRING``) is accepted only for the Azurite emulator.
Files go to container ``DATASETS_CONTAINER`` (created on first upload). An upload
is a block-blob commit: readers see the whole file or nothing. URIs are the blob URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient

from lightning.domain.errors import (
    InvalidInput,
    NotFound,
    ProviderError,
    TransientProviderError,
)

logger = logging.getLogger(__name__)

_PROVIDER = "azure-blob"
_UPLOAD_CONCURRENCY = 4


def _translate(exc: Exception, what: str) -> Exception:
    """Azure SDK errors → the domain's error tree (the SDK already retried transient ones)."""
    if isinstance(exc, ResourceNotFoundError):
        return NotFound("blob", what)
    if isinstance(exc, ClientAuthenticationError):
        return ProviderError(
            f"Azure Storage refused the credentials for {what}: grant the identity 'Storage Blob Data "
            "Contributor' on the account",
            provider=_PROVIDER,
            status_code=getattr(exc, "status_code", None),
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientProviderError(f"Azure Storage unreachable for {what}: {exc}", provider=_PROVIDER)
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        message = f"Azure Storage answered {status} for {what}: {exc.reason or exc.message}"
        if status is not None and (status == 429 or status >= 500):
            return TransientProviderError(message, provider=_PROVIDER, status_code=status)
        return ProviderError(message, provider=_PROVIDER, status_code=status)
    return exc


class AzureBlobStore:
    """Blobs under one container of one storage account."""

    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._service = service
        self._container: ContainerClient = service.get_container_client(container)
        self._container_ready = False
        self.container_url = self._container.url.rstrip("/")

    @classmethod
    def on_account(cls, account_url: str, *, container: str, credential: Any = None) -> AzureBlobStore:
        """Entra ID on ``account_url`` (https://<account>.blob.core.windows.net); ``DefaultAzureCredential``
        unless given."""
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(BlobServiceClient(account_url, credential=credential), container)

    @classmethod
    def from_connection_string(cls, connection_string: str, *, container: str) -> AzureBlobStore:
        """A connection string: Azurite only (Azure uses Entra ID)."""
        return cls(BlobServiceClient.from_connection_string(connection_string), container)

    def _ensure_container(self) -> None:
        if self._container_ready:
            return
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        except Exception as exc:
            raise _translate(exc, self.container_url) from None
        self._container_ready = True

    def _blob_name(self, uri: str) -> str:
        prefix = self.container_url + "/"
        if not uri.startswith(prefix):
            raise InvalidInput(f"{uri!r} is not a blob of container {self.container_url}")
        name = unquote(urlparse(uri[len(prefix) :]).path)
        if not name:
            raise InvalidInput(f"{uri!r} names no blob")
        return name

    def _client(self, uri: str) -> Any:
        return self._container.get_blob_client(self._blob_name(uri))

    def upload_file(self, path: Path, blob_name: str) -> str:
        if not blob_name or blob_name.startswith("/") or ".." in blob_name.split("/"):
            raise InvalidInput(f"blob name {blob_name!r} must be a relative path without '..'")
        self._ensure_container()
        client = self._container.get_blob_client(blob_name)
        try:
            with open(path, "rb") as data:
                client.upload_blob(data, overwrite=True, max_concurrency=_UPLOAD_CONCURRENCY)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
        except Exception as exc:
            raise _translate(exc, blob_name) from None
        return str(client.url)

    def download_file(self, uri: str, path: Path) -> Path:
        client = self._client(uri)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as out:
                client.download_blob(max_concurrency=_UPLOAD_CONCURRENCY).readinto(out)
        except OSError:
            raise
        except Exception as exc:
            path.unlink(missing_ok=True)
            raise _translate(exc, uri) from None
        return path

    def open_lines(self, uri: str) -> Iterator[bytes]:
        client = self._client(uri)
        try:
            stream = client.download_blob()
        except Exception as exc:
            raise _translate(exc, uri) from None
        return self._lines(stream.chunks(), uri)

    @staticmethod
    def _lines(chunks: Iterator[bytes], uri: str) -> Iterator[bytes]:
        rest = b""
        try:
            for chunk in chunks:
                data = rest + chunk
                lines = data.split(b"\n")
                rest = lines.pop()
                for line in lines:
                    yield line + b"\n"
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
            raise _translate(exc, uri) from None
        if rest:
            yield rest

    def exists(self, uri: str) -> bool:
        try:
            return bool(self._client(uri).exists())
        except Exception as exc:
            raise _translate(exc, uri) from None

    def delete(self, uri: str) -> None:
        try:
            self._client(uri).delete_blob()
        except ResourceNotFoundError:
            return
        except Exception as exc:
            raise _translate(exc, uri) from None

    def close(self) -> None:
        self._service.close()

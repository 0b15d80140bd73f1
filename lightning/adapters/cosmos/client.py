"""Cosmos DB plumbing shared by the Cosmos adapters: the client, the containers, error mapping.

Database ``CosmosAccount.database`` (``COSMOS_DATABASE``, ``agents``) holds one container per store, partition key
``/agent_id``: ``rl_episodes``, ``rl_datasets``, ``rl_training_runs``, ``rl_models``, ``golden``.
(``leases``, pk ``/id``, belongs to the Functions host's change-feed trigger.)

Authentication is Entra ID (``DefaultAzureCredential``: managed identity in Azure, ``az login`` on a
laptop) with the *Cosmos DB Built-in Data Contributor* role. A key is used only when ``COSMOS_KEY`` is
set, which is meant for an emulator; then ``COSMOS_VERIFY_TLS=false`` accepts its self-signed
certificate. With Entra ID the data plane may not create databases or containers (that is a
control-plane operation): the Bicep template creates them. With a key (emulator) they are created on
first use.

Clients are built on first use and cached per endpoint, never at import.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lightning.domain.errors import (
    Conflict,
    NotFound,
    ProviderError,
    TransientProviderError,
)

EPISODES = "rl_episodes"
DATASETS = "rl_datasets"
RUNS = "rl_training_runs"
MODELS = "rl_models"
GOLDEN = "golden"
LEASES = "leases"
PARTITION_KEY = "/agent_id"

CONTAINERS: dict[str, str] = {
    EPISODES: PARTITION_KEY,
    DATASETS: PARTITION_KEY,
    RUNS: PARTITION_KEY,
    MODELS: PARTITION_KEY,
    GOLDEN: PARTITION_KEY,
    LEASES: "/id",
}
"""Container name → partition key path (the Bicep template declares the same)."""

SYSTEM_FIELDS = ("_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")

_clients: dict[tuple[str, str | None, bool], Any] = {}
_prepared: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class CosmosAccount:
    """Which Cosmos DB account and database the stores use, and how to authenticate."""

    endpoint: str
    """https://<account>.documents.azure.com:443/ (or the emulator's URL)."""
    database: str = "agents"
    key: str | None = field(default=None, repr=False)
    """Emulator only: without it, Entra ID (``DefaultAzureCredential``)."""
    verify_tls: bool = True
    """False only for an emulator's self-signed certificate."""


def cosmos_client(account: CosmosAccount) -> Any:
    """The ``azure.cosmos.CosmosClient`` for ``account`` (one per endpoint and credential per process)."""
    cache_key = (account.endpoint, account.key, account.verify_tls)
    with _lock:
        client = _clients.get(cache_key)
        if client is None:
            from azure.cosmos import CosmosClient

            if account.key:
                # Emulator only: the key plus, for its self-signed certificate, no TLS verification.
                client = CosmosClient(
                    account.endpoint, credential=account.key, connection_verify=account.verify_tls
                )
            else:
                from azure.identity import DefaultAzureCredential

                client = CosmosClient(account.endpoint, credential=DefaultAzureCredential())
            _clients[cache_key] = client
        return client


def forget_clients() -> None:
    """Drop cached clients (tests that start and stop emulators)."""
    with _lock:
        _clients.clear()
        _prepared.clear()


def container(account: CosmosAccount, name: str) -> Any:
    """The ``ContainerProxy`` of ``name`` in the account's database; created first when using a key."""
    client = cosmos_client(account)
    database = client.get_database_client(account.database)
    if account.key is not None:
        marker = (account.endpoint, account.database, name)
        if marker not in _prepared:
            from azure.cosmos import PartitionKey

            with cosmos_errors("Cosmos DB container", name):
                client.create_database_if_not_exists(account.database)
                database.create_container_if_not_exists(
                    id=name, partition_key=PartitionKey(path=CONTAINERS[name])
                )
            with _lock:
                _prepared.add(marker)
    return database.get_container_client(name)


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


@contextmanager
def cosmos_errors(kind: str, ident: str) -> Iterator[None]:
    """Translate Cosmos SDK errors into the domain error tree (404 → NotFound, 409/412 → Conflict, ...)."""
    from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
    from azure.cosmos.exceptions import CosmosHttpResponseError

    try:
        yield
    except CosmosHttpResponseError as exc:
        status = status_of(exc)
        if status == 404:
            raise NotFound(kind, ident) from exc
        if status in (409, 412):
            raise Conflict(
                f"{kind} {ident!r} changed or already exists (HTTP {status}); read it again and retry",
                ident=ident,
            ) from exc
        if status in (408, 429, 449, 500, 502, 503, 504):
            retry_after = None
            headers = getattr(exc, "headers", None) or {}
            if "x-ms-retry-after-ms" in headers:
                retry_after = float(headers["x-ms-retry-after-ms"]) / 1000
            raise TransientProviderError(
                f"Cosmos DB answered {status} for {kind} {ident!r}; try again shortly",
                provider="cosmos",
                status_code=status,
                retry_after=retry_after,
            ) from exc
        if status in (401, 403):
            raise ProviderError(
                f"Cosmos DB refused access ({status}) to {kind} {ident!r}: give this identity the "
                "'Cosmos DB Built-in Data Contributor' role on the account",
                provider="cosmos",
                status_code=status,
            ) from exc
        raise ProviderError(
            f"Cosmos DB answered {status} for {kind} {ident!r}: {exc.message}",
            provider="cosmos",
            status_code=status,
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientProviderError(
            f"could not reach Cosmos DB for {kind} {ident!r}: {exc}", provider="cosmos"
        ) from exc
    except AzureError as exc:
        raise ProviderError(f"Cosmos DB failed for {kind} {ident!r}: {exc}", provider="cosmos") from exc


def strip_system(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without Cosmos system properties (``_rid``, ``_etag``, ...)."""
    return {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS}


def query_pages(
    container_proxy: Any,
    sql: str,
    parameters: list[dict[str, Any]],
    *,
    partition_key: str | None = None,
    page_size: int = 200,
) -> Iterator[dict[str, Any]]:
    """Stream a query page by page, following continuation tokens (never OFFSET/LIMIT).

    Without a partition key the query fans out across partitions (``enable_cross_partition_query``).
    """
    kwargs: dict[str, Any] = {"query": sql, "parameters": parameters, "max_item_count": page_size}
    if partition_key is not None:
        kwargs["partition_key"] = partition_key
    else:
        kwargs["enable_cross_partition_query"] = True
    # by_page() follows the server's continuation tokens page after page.
    for page in container_proxy.query_items(**kwargs).by_page():
        yield from page


def find_one(
    container_proxy: Any, where: str, params: list[dict[str, Any]], *, partition_key: str | None = None
) -> dict[str, Any] | None:
    """The first item matching ``where`` (a query, not a point read: see the module docstring).

    With a partition key, ``where`` must name ``c.agent_id = @agent_id`` too (the emulator insists).
    """
    return next(
        query_pages(container_proxy, f"SELECT * FROM c WHERE {where}", params, partition_key=partition_key),
        None,
    )


def if_match(etag: str | None) -> dict[str, Any]:
    """Keyword arguments for an ``IfNotModified`` write guarded by ``etag`` (none when it is None)."""
    if etag is None:
        return {}
    from azure.core import MatchConditions

    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def micros(value: Any) -> int:
    """Integer microseconds since the epoch of an aware datetime (exact ordering in queries)."""
    from datetime import UTC, datetime, timedelta

    return int((value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))

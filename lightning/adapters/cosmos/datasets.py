"""CosmosDatasetStore: dataset manifests in Cosmos DB container ``rl_datasets`` (pk ``/agent_id``).

Built by the Container when ``LIGHTNING_STORE=cosmos``. Items (``doc_type``), in the agent's partition:

* ``dataset`` — the manifest; ``id`` is the dataset name, plus ``created_us`` (integer microseconds) for
  exact newest-first ordering;
* ``dataset_ids`` — when a manifest lists more than ``INLINE_IDS`` episode ids, the id lists move to
  chunk items of ``CHUNK_IDS`` ids each (``<name>|ids|<field>|<n>``), because one Cosmos item holds at
  most 2 MB (50,000 UUID-style ids would not fit). Chunks are written first and the manifest last, so a
  reader never sees a manifest whose chunks are missing.

``put`` is the commit point of a build: a name maps to one ``content_sha256`` — the same content again
returns the stored manifest, other content is ``Conflict`` unless ``overwrite``. Reads locate the
partition with a small projected query, then point-read (cheap even for big manifests).

A name is unique per partition (agent): ``put`` checks across partitions first, which leaves only two
builds racing on one name for two different agents unguarded.
"""

from __future__ import annotations

from typing import Any

from lightning.adapters.cosmos.client import (
    DATASETS,
    CosmosAccount,
    container,
    cosmos_errors,
    if_match,
    micros,
    query_pages,
    status_of,
    strip_system,
)
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import format_timestamp
from lightning.domain.errors import Conflict, NotFound

INLINE_IDS = 10_000
CHUNK_IDS = 10_000
_ID_FIELDS = ("episode_ids", "validation_episode_ids")


def _chunk_id(name: str, field: str, n: int) -> str:
    return f"{name}|ids|{field}|{n}"


def _items(manifest: DatasetManifest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest item and its id chunks (none when the ids fit inline)."""
    item = manifest.model_dump(mode="json")
    item["id"] = manifest.name
    item["doc_type"] = "dataset"
    item["created_at"] = format_timestamp(manifest.created_at)
    item["created_us"] = micros(manifest.created_at)
    chunks: list[dict[str, Any]] = []
    if manifest.episode_count > INLINE_IDS:
        counts: dict[str, int] = {}
        for field in _ID_FIELDS:
            ids: list[str] = item.pop(field)
            item[field] = []
            parts = [ids[i : i + CHUNK_IDS] for i in range(0, len(ids), CHUNK_IDS)]
            counts[field] = len(parts)
            chunks.extend(
                {
                    "id": _chunk_id(manifest.name, field, n),
                    "agent_id": manifest.agent_id,
                    "doc_type": "dataset_ids",
                    "dataset": manifest.name,
                    "ids": part,
                }
                for n, part in enumerate(parts)
            )
        item["id_chunks"] = counts
    return item, chunks


class CosmosDatasetStore:
    """DatasetStore over the ``rl_datasets`` container."""

    def __init__(self, container_proxy: Any) -> None:
        self._c = container_proxy

    @classmethod
    def in_account(cls, account: CosmosAccount) -> CosmosDatasetStore:
        """The store on the account's ``rl_datasets`` container."""
        return cls(container(account, DATASETS))

    def _manifest(self, item: dict[str, Any]) -> DatasetManifest:
        data = strip_system(item)
        chunks: dict[str, int] = data.pop("id_chunks", None) or {}
        for field, count in chunks.items():
            data[field] = [
                episode_id
                for n in range(count)
                for episode_id in self._c.read_item(
                    _chunk_id(item["id"], field, n), partition_key=item["agent_id"]
                )["ids"]
            ]
        manifest = DatasetManifest.model_validate(data)
        manifest.etag = item.get("_etag")
        return manifest

    def _find_item(self, name: str) -> dict[str, Any] | None:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        with cosmos_errors("dataset", name):
            key = next(
                query_pages(
                    self._c,
                    "SELECT c.id, c.agent_id FROM c WHERE c.id = @id AND c.doc_type = 'dataset'",
                    [{"name": "@id", "value": name}],
                ),
                None,
            )
            if key is None:
                return None
            try:
                item: dict[str, Any] = self._c.read_item(key["id"], partition_key=key["agent_id"])
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 404:  # deleted between the two calls
                    return None
                raise
            return item

    def find(self, name: str) -> DatasetManifest | None:
        item = self._find_item(name)
        if item is None:
            return None
        with cosmos_errors("dataset", name):
            return self._manifest(item)

    def get(self, name: str) -> DatasetManifest:
        found = self.find(name)
        if found is None:
            raise NotFound("dataset", name, hint="list them with `lightning-loop list-datasets`")
        return found

    def put(self, manifest: DatasetManifest, *, overwrite: bool = False) -> DatasetManifest:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        existing = self._find_item(manifest.name)
        if existing is not None and existing.get("content_sha256") == manifest.content_sha256:
            with cosmos_errors("dataset", manifest.name):
                return self._manifest(existing)
        if existing is not None and not overwrite:
            raise Conflict(
                f"dataset {manifest.name!r} already exists with different content (built "
                f"{existing.get('created_at')}); choose another name or pass --overwrite",
                ident=manifest.name,
            )
        item, chunks = _items(manifest)
        with cosmos_errors("dataset", manifest.name):
            for chunk in chunks:  # first: the manifest written last is the commit
                self._c.upsert_item(chunk)
            if existing is None:
                try:
                    written = self._c.create_item(item)
                except CosmosHttpResponseError as exc:
                    if status_of(exc) != 409:
                        raise
                    # Another build committed the same name meanwhile: decide again on its content.
                    return self.put(manifest, overwrite=overwrite)
            elif existing["agent_id"] != manifest.agent_id:
                self._delete(existing)
                written = self._c.create_item(item)
            else:
                try:
                    written = self._c.replace_item(existing["id"], item, **if_match(existing.get("_etag")))
                except CosmosHttpResponseError as exc:
                    if status_of(exc) == 412:
                        raise Conflict(
                            f"dataset {manifest.name!r} changed while it was being overwritten; try again",
                            ident=manifest.name,
                        ) from exc
                    raise
                self._drop_stale_chunks(existing, item)
            return self._manifest(written)

    def _delete(self, item: dict[str, Any]) -> None:
        self._c.delete_item(item["id"], partition_key=item["agent_id"])
        for field, count in (item.get("id_chunks") or {}).items():
            for n in range(count):
                self._c.delete_item(_chunk_id(item["id"], field, n), partition_key=item["agent_id"])

    def _drop_stale_chunks(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        kept = new.get("id_chunks") or {}
        for field, count in (old.get("id_chunks") or {}).items():
            for n in range(kept.get(field, 0), count):
                self._c.delete_item(_chunk_id(old["id"], field, n), partition_key=old["agent_id"])

    def list(self, *, agent_id: str | None = None) -> list[DatasetManifest]:
        where = " WHERE c.doc_type = 'dataset'"
        params: list[dict[str, Any]] = []
        if agent_id is not None:
            where += " AND c.agent_id = @agent_id"
            params = [{"name": "@agent_id", "value": agent_id}]
        with cosmos_errors("datasets", agent_id or "*"):
            items = query_pages(
                self._c, f"SELECT * FROM c{where} ORDER BY c.created_us DESC", params, partition_key=agent_id
            )
            manifests = [self._manifest(item) for item in items]
        # Same created_us: name descending, like the SQLite store.
        manifests.sort(key=lambda m: (micros(m.created_at), m.name), reverse=True)
        return manifests

    def latest(self, agent_id: str) -> DatasetManifest | None:
        with cosmos_errors("datasets", agent_id):
            item = next(
                query_pages(
                    self._c,
                    "SELECT TOP 1 * FROM c WHERE c.agent_id = @agent_id AND c.doc_type = 'dataset' "
                    "ORDER BY c.created_us DESC",
                    [{"name": "@agent_id", "value": agent_id}],
                    partition_key=agent_id,
                ),
                None,
            )
            return self._manifest(item) if item is not None else None

"""CosmosDatasetStore: dataset manifests in Cosmos DB container ``rl_datasets`` (pk ``/agent_id``).

Built by the Container when ``LIGHTNING_STORE=cosmos``. One item per dataset: ``id`` is the dataset
name, plus ``created_us`` (integer microseconds) for exact newest-first ordering. ``put`` is the commit
point of a build: a name maps to one ``content_sha256`` — the same content again returns the stored
manifest, other content is ``Conflict`` unless ``overwrite``.

Limits: an item holds at most 2 MB, i.e. roughly 40,000 episode ids per manifest; and a name is unique
per partition (agent), so two agents could each hold a dataset of the same name — ``put`` checks across
partitions first, which closes that except for two builds racing on the same name for different agents.
"""

from __future__ import annotations

from typing import Any

from lightning.adapters.cosmos.client import (
    DATASETS,
    container,
    cosmos_errors,
    if_match,
    micros,
    query_pages,
    status_of,
    strip_system,
)
from lightning.config import Settings
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import format_timestamp
from lightning.domain.errors import Conflict, NotFound


def _item(manifest: DatasetManifest) -> dict[str, Any]:
    item = manifest.model_dump(mode="json")
    item["id"] = manifest.name
    item["created_at"] = format_timestamp(manifest.created_at)
    item["created_us"] = micros(manifest.created_at)
    return item


def _manifest(item: dict[str, Any]) -> DatasetManifest:
    manifest = DatasetManifest.model_validate(strip_system(item))
    manifest.etag = item.get("_etag")
    return manifest


class CosmosDatasetStore:
    """DatasetStore over the ``rl_datasets`` container."""

    def __init__(self, container_proxy: Any) -> None:
        self._c = container_proxy

    @classmethod
    def from_settings(cls, settings: Settings) -> CosmosDatasetStore:
        return cls(container(settings, DATASETS))

    def _find_item(self, name: str) -> dict[str, Any] | None:
        """Locate the dataset's partition with a small projected query, then point-read the item
        (a manifest can hold tens of thousands of episode ids; a point read is the cheap way to fetch it)."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        with cosmos_errors("dataset", name):
            key = next(
                query_pages(
                    self._c,
                    "SELECT c.id, c.agent_id FROM c WHERE c.id = @id",
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
        return _manifest(item) if item is not None else None

    def get(self, name: str) -> DatasetManifest:
        found = self.find(name)
        if found is None:
            raise NotFound("dataset", name, hint="list them with `lightning-loop list-datasets`")
        return found

    def put(self, manifest: DatasetManifest, *, overwrite: bool = False) -> DatasetManifest:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        existing = self._find_item(manifest.name)
        if existing is not None and existing.get("content_sha256") == manifest.content_sha256:
            return _manifest(existing)
        if existing is not None and not overwrite:
            raise Conflict(
                f"dataset {manifest.name!r} already exists with different content (built "
                f"{existing.get('created_at')}); choose another name or pass --overwrite",
                ident=manifest.name,
            )
        with cosmos_errors("dataset", manifest.name):
            if existing is None:
                try:
                    return _manifest(self._c.create_item(_item(manifest)))
                except CosmosHttpResponseError as exc:
                    if status_of(exc) != 409:
                        raise
                    # Another build committed the same name meanwhile: decide again on its content.
                    return self.put(manifest, overwrite=overwrite)
            if existing["agent_id"] != manifest.agent_id:
                self._c.delete_item(existing["id"], partition_key=existing["agent_id"])
                return _manifest(self._c.create_item(_item(manifest)))
            try:
                return _manifest(
                    self._c.replace_item(existing["id"], _item(manifest), **if_match(existing.get("_etag")))
                )
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 412:
                    raise Conflict(
                        f"dataset {manifest.name!r} changed while it was being overwritten; try again",
                        ident=manifest.name,
                    ) from exc
                raise

    def list(self, *, agent_id: str | None = None) -> list[DatasetManifest]:
        where, params = "", []
        if agent_id is not None:
            where, params = " WHERE c.agent_id = @agent_id", [{"name": "@agent_id", "value": agent_id}]
        with cosmos_errors("datasets", agent_id or "*"):
            items = query_pages(
                self._c, f"SELECT * FROM c{where} ORDER BY c.created_us DESC", params, partition_key=agent_id
            )
            # Same created_us: name descending, like the SQLite store (a stable sort keeps the rest).
            manifests = [_manifest(item) for item in items]
        manifests.sort(key=lambda m: (micros(m.created_at), m.name), reverse=True)
        return manifests

    def latest(self, agent_id: str) -> DatasetManifest | None:
        with cosmos_errors("datasets", agent_id):
            item = next(
                query_pages(
                    self._c,
                    "SELECT TOP 1 * FROM c WHERE c.agent_id = @agent_id ORDER BY c.created_us DESC",
                    [{"name": "@agent_id", "value": agent_id}],
                    partition_key=agent_id,
                ),
                None,
            )
        return _manifest(item) if item is not None else None

"""CosmosModelRegistry: model versions in Cosmos DB container ``rl_models`` (pk ``/agent_id``).

Built by the Container when ``LIGHTNING_STORE=cosmos``. Item kinds (``doc_type``), all in the agent's
partition:

* ``model`` — a ``ModelVersion`` (``id`` = registry id such as ``autonomous-agent:v3``, unique per agent,
  so two registrations of the same version number cannot both succeed);
* ``model_name`` — ``id`` = ``name-<sha256 of model_name>``: created before the version, it makes
  "one version per model name" atomic (``register`` returns the existing version otherwise);
* ``active`` — ``id`` = ``active``: the pointer to the one active version. ``activate`` moves it with an
  etag-guarded write, so of two promoters racing exactly one wins (the other gets ``Conflict``); the
  versions' ``active``/``status`` fields follow it, and reads take ``active`` from the pointer so a
  crash between the two writes can never show two active versions.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lightning.adapters.cosmos.client import (
    MODELS,
    CosmosAccount,
    container,
    cosmos_errors,
    if_match,
    query_pages,
    status_of,
    strip_system,
)
from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.model import ModelVersion

_POINTER = "active"


def _not_found(agent_id: str, key: str) -> NotFound:
    return NotFound(
        "model version", f"{agent_id}/{key}", hint=f"see `lightning-loop list-models --agent-id {agent_id}`"
    )


def _name_claim_id(model_name: str) -> str:
    return "name-" + hashlib.sha256(model_name.encode()).hexdigest()[:40]


def _item(version: ModelVersion) -> dict[str, Any]:
    item = version.model_dump(mode="json")
    item["doc_type"] = "model"
    return item


class CosmosModelRegistry:
    """ModelRegistry over the ``rl_models`` container."""

    def __init__(self, container_proxy: Any) -> None:
        self._c = container_proxy

    @classmethod
    def in_account(cls, account: CosmosAccount) -> CosmosModelRegistry:
        """The store on the account's ``rl_models`` container."""
        return cls(container(account, MODELS))

    # --- reading ---------------------------------------------------------------------------------
    def _items(
        self, agent_id: str, where: str = "", params: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM c WHERE c.agent_id = @agent_id"
        if where:
            sql += f" AND {where}"
        with cosmos_errors("model versions", agent_id):
            return list(
                query_pages(
                    self._c,
                    sql,
                    [{"name": "@agent_id", "value": agent_id}, *(params or [])],
                    partition_key=agent_id,
                )
            )

    def _pointer(self, agent_id: str) -> dict[str, Any] | None:
        found = self._items(agent_id, "c.id = @id", [{"name": "@id", "value": _POINTER}])
        return found[0] if found else None

    @staticmethod
    def _version(item: dict[str, Any], active_id: str | None) -> ModelVersion:
        version = ModelVersion.model_validate(strip_system(item))
        return version.model_copy(update={"etag": item.get("_etag"), "active": version.id == active_id})

    def _active_id(self, agent_id: str) -> str | None:
        pointer = self._pointer(agent_id)
        return pointer.get("version_id") if pointer else None

    def _snapshot(self, agent_id: str) -> tuple[list[dict[str, Any]], str | None]:
        """The agent's model items and the active pointer's target, in one query."""
        items = self._items(agent_id, "c.doc_type IN ('model', 'active')")
        pointer = next((i for i in items if i.get("doc_type") == "active"), None)
        return [i for i in items if i.get("doc_type") == "model"], (pointer or {}).get("version_id")

    def list(self, agent_id: str) -> list[ModelVersion]:
        items, active_id = self._snapshot(agent_id)
        versions = [self._version(i, active_id) for i in items]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get(self, agent_id: str, model_name_or_version: str) -> ModelVersion:
        key = model_name_or_version
        versions = self.list(agent_id)
        number = key[1:] if key[:1] in ("v", "V") else key
        wanted_number = int(number) if number.isdigit() else None

        def matchers(v: ModelVersion) -> tuple[bool, bool, bool, bool]:
            return (v.id == key, v.version == wanted_number, v.model_name == key, v.deployment_name == key)

        for rank in range(4):  # by id, then number, then model name, then deployment name
            for version in versions:  # newest first, like the SQLite registry
                if matchers(version)[rank]:
                    return version
        raise _not_found(agent_id, key)

    def active(self, agent_id: str) -> ModelVersion | None:
        active_id = self._active_id(agent_id)
        if active_id is None:
            return None
        found = self._items(agent_id, "c.id = @id", [{"name": "@id", "value": active_id}])
        return self._version(found[0], active_id) if found else None

    def next_version(self, agent_id: str) -> int:
        with cosmos_errors("model versions", agent_id):
            top = list(
                query_pages(
                    self._c,
                    "SELECT TOP 1 c.version FROM c WHERE c.agent_id = @agent_id AND c.doc_type = 'model' "
                    "ORDER BY c.version DESC",
                    [{"name": "@agent_id", "value": agent_id}],
                    partition_key=agent_id,
                )
            )
        return int(top[0]["version"]) + 1 if top else 1

    # --- writing ---------------------------------------------------------------------------------
    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        claim = {
            "id": _name_claim_id(version.model_name),
            "agent_id": version.agent_id,
            "doc_type": "model_name",
            "model_name": version.model_name,
            "version_id": version.id,
        }
        with cosmos_errors("model version", version.id):
            try:
                self._c.create_item(claim)
            except CosmosHttpResponseError as exc:
                if status_of(exc) != 409:
                    raise
                existing = [v for v in self.list(version.agent_id) if v.model_name == version.model_name]
                if existing:
                    return existing[0], False
                # The claimer died before writing its version: this registration completes it.
            try:
                created = self._c.create_item(_item(version.model_copy(update={"active": False})))
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 409:
                    self._c.delete_item(claim["id"], partition_key=version.agent_id)
                    raise Conflict(
                        f"model version {version.id} (v{version.version}) already exists; retry with the "
                        "next version number",
                        ident=version.id,
                    ) from exc
                raise
        if version.active:
            return self.activate(version.agent_id, version.id), True
        return self._version(created, self._active_id(version.agent_id)), True

    def update(self, version: ModelVersion) -> ModelVersion:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        active_id = self._active_id(version.agent_id)
        if version.active and active_id not in (None, version.id):
            raise Conflict(
                f"{version.agent_id} already has an active version; activate {version.id} instead",
                ident=version.id,
            )
        with cosmos_errors("model version", version.id):
            try:
                item = self._c.replace_item(version.id, _item(version), **if_match(version.etag))
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 412:
                    raise Conflict(
                        f"model version {version.id} changed since it was read; read it again and retry",
                        ident=version.id,
                    ) from exc
                if status_of(exc) == 404:
                    raise NotFound("model version", version.id) from exc
                raise
        if version.active and active_id is None:
            return self.activate(version.agent_id, version.id)
        if not version.active and active_id == version.id:
            self._move_pointer(version.agent_id, None)
            active_id = None
        return self._version(item, active_id)

    def _move_pointer(self, agent_id: str, version_id: str | None) -> None:
        """Point ``active`` at ``version_id``; ``Conflict`` if another writer moved it meanwhile."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        pointer = self._pointer(agent_id)
        body = {"id": _POINTER, "agent_id": agent_id, "doc_type": "active", "version_id": version_id}
        with cosmos_errors("active model pointer", agent_id):
            try:
                if pointer is None:
                    self._c.create_item(body)
                else:
                    self._c.replace_item(_POINTER, body, **if_match(pointer.get("_etag")))
            except CosmosHttpResponseError as exc:
                if status_of(exc) in (409, 412):
                    raise Conflict(
                        f"another promotion of {agent_id} happened at the same time; check list-models and retry",
                        ident=agent_id,
                    ) from exc
                raise

    def activate(self, agent_id: str, version_id: str) -> ModelVersion:
        target = self.get(agent_id, version_id)
        if target.active and target.status == "active":
            return target
        for _ in range(50):
            try:
                self._move_pointer(agent_id, target.id)  # the decision: one etag-guarded write
                break
            except Conflict:
                continue  # another promotion moved it first: ours comes after it
        else:
            raise Conflict(f"could not activate {target.id}: too many concurrent promotions", ident=target.id)
        return self._follow_pointer(agent_id, target.id)

    def _follow_pointer(self, agent_id: str, wanted: str) -> ModelVersion:
        """Make the versions' ``active``/``status`` match the pointer; repeat until it holds still."""
        result: ModelVersion | None = None
        for _ in range(50):
            items, active_id = self._snapshot(agent_id)
            now = utcnow()
            with cosmos_errors("model version", wanted):
                for item in items:
                    current = ModelVersion.model_validate(strip_system(item))
                    if current.id == active_id and not (current.active and current.status == "active"):
                        current = current.model_copy(
                            update={"active": True, "status": "active", "error": None, "updated_at": now}
                        )
                    elif current.id != active_id and (current.active or current.status == "active"):
                        current = current.model_copy(
                            update={"active": False, "status": "retired", "updated_at": now}
                        )
                    else:
                        if current.id == wanted:
                            result = self._version(item, active_id)
                        continue
                    written = self._c.replace_item(current.id, _item(current))
                    if current.id == wanted:
                        result = self._version(written, active_id)
            if self._active_id(agent_id) == active_id:
                break
        if result is None:
            raise _not_found(agent_id, wanted)
        return result

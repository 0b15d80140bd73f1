"""InMemoryModelRegistry: the ``ModelRegistry`` port in memory, for service unit tests.

Same semantics as ``SqliteModelRegistry`` (``tests/integration/contracts/test_model_registry_contract.py``
runs both): one version per (agent, model name), unique version numbers, etag = row version,
``Conflict`` on a stale etag, exactly one active version per agent.
"""

from __future__ import annotations

import threading

from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.model import ModelVersion


class InMemoryModelRegistry:
    def __init__(self) -> None:
        self._rows: dict[str, tuple[int, ModelVersion]] = {}
        self._lock = threading.RLock()

    def _out(self, version_id: str) -> ModelVersion:
        row, version = self._rows[version_id]
        return version.model_copy(update={"etag": str(row)}, deep=True)

    def _agent(self, agent_id: str) -> list[ModelVersion]:
        return [v for _, v in self._rows.values() if v.agent_id == agent_id]

    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        with self._lock:
            for existing in self._agent(version.agent_id):
                if existing.model_name == version.model_name:
                    return self._out(existing.id), False
            if version.id in self._rows or any(
                v.version == version.version for v in self._agent(version.agent_id)
            ):
                raise Conflict(f"model version {version.id} already exists", ident=version.id)
            if version.active and any(v.active for v in self._agent(version.agent_id)):
                raise Conflict(f"{version.agent_id} already has an active version", ident=version.id)
            self._rows[version.id] = (1, version.model_copy(update={"etag": None}, deep=True))
            return self._out(version.id), True

    def get(self, agent_id: str, model_name_or_version: str) -> ModelVersion:
        key = model_name_or_version
        with self._lock:
            versions = self._agent(agent_id)
            for match in (
                lambda v: v.id == key,
                lambda v: f"v{v.version}" == key or str(v.version) == key,
                lambda v: v.model_name == key,
                lambda v: v.deployment_name == key,
            ):
                found = [v for v in versions if match(v)]
                if found:
                    return self._out(found[0].id)
        raise NotFound(
            "model version",
            f"{agent_id}/{key}",
            hint=f"see `lightning-loop list-models --agent-id {agent_id}`",
        )

    def list(self, agent_id: str) -> list[ModelVersion]:
        with self._lock:
            return [self._out(v.id) for v in sorted(self._agent(agent_id), key=lambda v: -v.version)]

    def active(self, agent_id: str) -> ModelVersion | None:
        with self._lock:
            found = [v for v in self._agent(agent_id) if v.active]
            return self._out(found[0].id) if found else None

    def update(self, version: ModelVersion) -> ModelVersion:
        with self._lock:
            if version.id not in self._rows:
                raise NotFound("model version", version.id)
            row, _ = self._rows[version.id]
            if version.etag is not None and version.etag != str(row):
                raise Conflict(
                    f"model version {version.id} changed since it was read; read it again", ident=version.id
                )
            if version.active and any(v.active and v.id != version.id for v in self._agent(version.agent_id)):
                raise Conflict(f"{version.agent_id} already has an active version", ident=version.id)
            self._rows[version.id] = (row + 1, version.model_copy(update={"etag": None}, deep=True))
            return self._out(version.id)

    def activate(self, agent_id: str, version_id: str) -> ModelVersion:
        with self._lock:
            target = self.get(agent_id, version_id)
            if target.active:
                return target
            now = utcnow()
            for row, version in list(self._rows.values()):
                if version.agent_id == agent_id and version.active:
                    self._rows[version.id] = (
                        row + 1,
                        version.model_copy(update={"active": False, "status": "retired", "updated_at": now}),
                    )
            row, version = self._rows[target.id]
            self._rows[target.id] = (
                row + 1,
                version.model_copy(
                    update={"active": True, "status": "active", "error": None, "updated_at": now}
                ),
            )
            return self._out(target.id)

    def next_version(self, agent_id: str) -> int:
        with self._lock:
            return max((v.version for v in self._agent(agent_id)), default=0) + 1

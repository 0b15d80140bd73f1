"""ModelRegistry: fine-tuned model versions per agent, exactly one active (Cosmos ``rl_models``).

Implemented by ``SqliteModelRegistry`` (``lightning/adapters/sqlite/models.py``) and the in-memory fake
(``tests/fakes/models.py``); ``tests/integration/contracts/test_model_registry_contract.py`` runs on each.
Used by ``lightning/services/promotion.py`` and, on the local host, by the agent to follow the active
version.
"""

from __future__ import annotations

from typing import Protocol

from lightning.domain.model import ModelVersion


class ModelRegistry(Protocol):
    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        """Add a version unless one with the same model_name exists for the agent; returns (version, created).

        ``Conflict`` when the version number is taken by another model (take ``next_version`` again)."""
        ...

    def get(self, agent_id: str, model_name_or_version: str) -> ModelVersion:
        """By model name, deployment name, ``vN`` or registry id; ``NotFound`` otherwise."""
        ...

    def list(self, agent_id: str) -> list[ModelVersion]:
        """Newest version first."""
        ...

    def active(self, agent_id: str) -> ModelVersion | None: ...

    def update(self, version: ModelVersion) -> ModelVersion:
        """Write if the etag is current (``Conflict`` otherwise, and when it would make a second version
        active). Setting ``active=False`` is how an agent goes back to its base model."""
        ...

    def activate(self, agent_id: str, version_id: str) -> ModelVersion:
        """Make one version active and retire the previously active one, atomically where possible."""
        ...

    def next_version(self, agent_id: str) -> int: ...

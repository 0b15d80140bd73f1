"""ModelRegistry: fine-tuned model versions per agent, exactly one active (Cosmos ``rl_models``)."""

from __future__ import annotations

from typing import Protocol

from lightning.domain.model import ModelVersion


class ModelRegistry(Protocol):
    def register(self, version: ModelVersion) -> tuple[ModelVersion, bool]:
        """Add a version unless one with the same model_name exists for the agent; returns (version, created)."""
        ...

    def get(self, agent_id: str, model_name_or_version: str) -> ModelVersion:
        """By model name, deployment name, ``vN`` or registry id; ``NotFound`` otherwise."""
        ...

    def list(self, agent_id: str) -> list[ModelVersion]:
        """Newest version first."""
        ...

    def active(self, agent_id: str) -> ModelVersion | None: ...

    def update(self, version: ModelVersion) -> ModelVersion:
        """Write if the etag is current (``Conflict`` otherwise)."""
        ...

    def activate(self, agent_id: str, version_id: str) -> ModelVersion:
        """Make one version active and retire the previously active one, atomically where possible."""
        ...

    def next_version(self, agent_id: str) -> int: ...

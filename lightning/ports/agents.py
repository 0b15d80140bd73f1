"""AgentRegistry: the registered agent definitions."""

from __future__ import annotations

from typing import Protocol

from lightning.domain.agent import AgentDefinition


class AgentRegistry(Protocol):
    def get(self, agent_id: str) -> AgentDefinition:
        """``NotFound`` listing the known agents when missing."""
        ...

    def list(self) -> list[AgentDefinition]: ...

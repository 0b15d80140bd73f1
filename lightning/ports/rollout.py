"""AgentRollout: point a running agent at a model (Kubernetes Deployment env + restart)."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class RolloutResult(BaseModel):
    ok: bool
    message: str
    previous_env: dict[str, str | None] = Field(default_factory=dict)
    rolled_back: bool = False


class AgentRollout(Protocol):
    def current_env(self, *, namespace: str, deployment: str) -> dict[str, str | None]:
        """USE_TUNED_MODEL and TUNED_MODEL_NAME as the agent has them now (None when unset)."""
        ...

    def roll_out(self, *, namespace: str, deployment: str, env: dict[str, str | None]) -> RolloutResult:
        """Set env, restart, wait; on failure restore the previous env and report ``rolled_back``."""
        ...

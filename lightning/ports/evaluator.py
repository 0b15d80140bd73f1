"""Evaluator: scores one episode against its agent's definition."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode


class Evaluation(BaseModel):
    """An evaluator's verdict on one episode, mapped to a reward."""

    model_config = ConfigDict(frozen=True)

    score: float
    reason: str
    evaluator: str
    evaluator_version: str
    expected_tool: str | None = None
    tool_correct: bool | None = None
    complete: bool | None = None


class Evaluator(Protocol):
    name: str
    version: str

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation: ...

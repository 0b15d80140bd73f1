"""Evaluator: scores one episode against its agent's definition."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode, Reward


class Evaluation(BaseModel):
    """An evaluator's verdict on one episode, mapped to a reward."""

    model_config = ConfigDict(frozen=True)

    score: Reward = Field(description="The reward in [0, 1] (NaN, infinities and out-of-range refused).")
    reason: str = Field(description="Why, in words a reviewer can check.")
    evaluator: str = Field(description="Evaluator name, e.g. task_adherence.")
    evaluator_version: str = Field(
        description="Which implementation/version scored it (rubric-1, judge-...)."
    )
    expected_tool: str | None = None
    tool_correct: bool | None = None
    complete: bool | None = None


class Evaluator(Protocol):
    """Scores one episode. May raise for that episode (bad data, provider refusal): callers isolate it."""

    name: str
    version: str

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation: ...

"""Evaluator: scores one episode against its agent's definition."""

from __future__ import annotations

from collections.abc import Sequence
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
    flags: tuple[str, ...] = Field(
        default=(), description="Signals for a reviewer: no_intent, unstated_arguments, competing_intent…"
    )


class Evaluator(Protocol):
    """Scores episodes. ``evaluate`` may raise for that episode (bad data, provider refusal): callers
    isolate it. Errors are ``LightningError``s: ``TransientProviderError`` (429/5xx/timeouts, with
    ``retry_after`` when the provider said), ``ProviderError`` (refused or unreadable for good),
    ``ConfigurationError`` (fails every episode: no credential, no deployment)."""

    name: str
    version: str

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation: ...

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        """Score ``items`` (as concurrently as the evaluator allows: the rubric inline, a judge with a
        bounded pool); one outcome per item, in order — an item's failure is its exception, returned,
        not raised. Only ``ConfigurationError`` is raised (it would fail every item)."""
        ...

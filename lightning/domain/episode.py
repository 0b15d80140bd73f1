"""Episodes and their labels: what an agent did for one request, and how good it was.

The JSON shape is the workshop's (``id, agent_id, timestamp, state{query,
context}, action{tool, arguments}, result, reward, labeled``) plus
``model_version, latency_ms, error, response`` and a ``label`` record.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from lightning.domain.errors import InvalidInput


def check_reward(value: float) -> float:
    """A reward is a finite float in [0, 1]; anything else is refused with a clear message."""
    if isinstance(value, bool):
        raise ValueError("reward must be a number in [0, 1], not a boolean")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"reward must be a finite number in [0, 1], got {value}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"reward must be between 0 and 1, got {value}")
    return float(value)


def _refuse_bool(value: object) -> object:
    # pydantic's lax float would turn True into 1.0 before check_reward could see it.
    if isinstance(value, bool):
        raise ValueError("reward must be a number in [0, 1], not a boolean")
    return value


Reward = Annotated[float, BeforeValidator(_refuse_bool), AfterValidator(check_reward)]
"""A float in [0, 1], never NaN, infinite or a boolean."""


def parse_reward(value: object) -> float:
    """Parse user input (CLI flag, HTTP body) into a reward or raise ``InvalidInput``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(
            f"reward must be a number between 0 and 1, got {value!r}", field="reward"
        ) from None
    try:
        return check_reward(number)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="reward") from None


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, microseconds kept so ordering is exact."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


class State(BaseModel):
    """What the agent was asked."""

    model_config = ConfigDict(extra="allow")

    query: str = Field(description="The user's request, as the agent received it.")
    context: dict[str, Any] = Field(default_factory=dict, description="Caller context (user, session, ...).")


class Action(BaseModel):
    """The tool call the agent made; ``tool`` is None when it made none."""

    model_config = ConfigDict(extra="allow")

    tool: str | None = Field(default=None, description="Name of the tool the agent called.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments of the tool call.")


LabelSource = Literal[
    "human",  # set by a person (CLI, HTTP); never overwritten by auto-labeling
    "auto",  # set by an evaluator (rubric or judge)
]


class Label(BaseModel):
    """Who judged an episode, how, and why."""

    model_config = ConfigDict(frozen=True)

    source: LabelSource
    score: Reward = Field(description="The reward in [0, 1].")
    reason: str = Field(default="", description="Why this reward, in words a reviewer can check.")
    evaluator: str | None = Field(default=None, description="Evaluator name for auto labels.")
    evaluator_version: str | None = None
    labeled_at: datetime = Field(default_factory=utcnow)
    labeled_by: str = Field(default="unknown", description="User name or evaluator id.")
    expected_tool: str | None = Field(
        default=None, description="The tool the evaluator expected, if it knows."
    )
    tool_correct: bool | None = Field(default=None, description="Whether the chosen tool was the right one.")
    complete: bool | None = Field(default=None, description="Whether the response was complete.")


class Episode(BaseModel):
    """One request → tool call → result of one agent."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255, description="Stable id; re-sending it never duplicates.")
    agent_id: str = Field(min_length=1, max_length=128)
    timestamp: datetime = Field(default_factory=utcnow)
    state: State
    action: Action = Field(default_factory=Action)
    result: Any = Field(default=None, description="What the tool returned (JSON).")
    response: str | None = Field(default=None, description="The agent's final answer, when it gave one.")
    reward: Reward | None = None
    labeled: bool = False
    model_version: str | None = Field(
        default=None, description="Model (or deployment) that chose the action."
    )
    latency_ms: float | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, description="Error message when the tool call failed.")
    label: Label | None = None
    etag: str | None = Field(
        default=None, exclude=True, description="Store concurrency token (row version or Cosmos _etag)."
    )

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("id", "agent_id")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        # Cosmos ids may not contain '/', '\\', '?' or '#'; refusing them everywhere keeps backends equal.
        # Four `in` tests, not a generator: this runs for every episode read (hot in labeling).
        if "/" in value or "\\" in value or "?" in value or "#" in value:
            raise ValueError("must not contain '/', '\\', '?' or '#'")
        return value

    def with_label(self, label: Label) -> Episode:
        """The same episode with ``label`` applied (reward and labeled follow the label)."""
        return self.model_copy(update={"label": label, "reward": label.score, "labeled": True})

    @property
    def human_labeled(self) -> bool:
        return self.label is not None and self.label.source == "human"

    def to_document(self) -> dict[str, Any]:
        """The JSON document stored and exported (timestamps as ISO strings with Z)."""
        doc = self.model_dump(mode="json")
        doc["timestamp"] = format_timestamp(self.timestamp)
        if self.label is not None:
            doc["label"]["labeled_at"] = format_timestamp(self.label.labeled_at)
        return doc

"""Episodes and their labels: what an agent did for one request, and how good it was.

The JSON shape is the workshop's (``id, agent_id, timestamp, state{query,
context}, action{tool, arguments}, result, reward, labeled``) plus
``model_version, latency_ms, error, response``, the label history ``labels``
(every label given, oldest first) and the effective ``label``.

Ground truth and the judge are kept apart: a human label may carry the call the
agent *should* have made (``expected_tool`` / ``expected_arguments``); it is a
*correction* when that differs from the episode's action and a *confirmation*
when it matches (or when a person accepted the answer as it is). The effective
label is the latest human one when there is one, else the latest auto one —
auto-labeling appends to the history and can never displace a person's label.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

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
        default=None,
        description="Human: the tool the agent should have called. Auto: the tool the evaluator expected.",
    )
    expected_arguments: dict[str, Any] | None = Field(
        default=None,
        description="Human: the arguments of the right call (validated against the tool schema).",
    )
    tool_correct: bool | None = Field(default=None, description="Whether the chosen tool was the right one.")
    complete: bool | None = Field(default=None, description="Whether the response was complete.")
    flags: tuple[str, ...] = Field(
        default=(),
        description="Evaluator signals a reviewer should know (no_intent, unstated_arguments, competing_intent…).",
    )


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
    labels: list[Label] = Field(
        default_factory=list, description="Every label this episode was given, oldest first."
    )
    label: Label | None = Field(
        default=None, description="The effective label: the latest human one, else the latest auto one."
    )
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

    @model_validator(mode="after")
    def _history(self) -> Episode:
        # Documents written before the history existed hold only ``label``: it is the whole history.
        if self.label is not None and not self.labels:
            self.labels = [self.label]
        elif self.labels and self.label is None:
            self.label = effective_label(self.labels)
        return self

    def with_label(self, label: Label) -> Episode:
        """The episode with ``label`` appended to its history; reward and labeled follow the effective one."""
        labels = append_label(self.labels, label)
        effective = effective_label(labels)
        assert effective is not None
        return self.model_copy(
            update={"labels": labels, "label": effective, "reward": effective.score, "labeled": True}
        )

    @property
    def human_labeled(self) -> bool:
        return self.label is not None and self.label.source == "human"

    @property
    def human_label(self) -> Label | None:
        """The latest human label, if a person labeled this episode."""
        return self.label if self.human_labeled else None

    @property
    def auto_label(self) -> Label | None:
        """The latest evaluator label, whatever people said since."""
        return next((label for label in reversed(self.labels) if label.source == "auto"), None)

    @property
    def corrected(self) -> bool:
        """A person said which call was right, and it is not the call the agent made."""
        return is_correction(self.human_label, self.action)

    def training_call(self) -> tuple[str, dict[str, Any]] | None:
        """The call an example of this episode teaches: a person's correction, else the agent's own."""
        human = self.human_label
        if human is not None and human.expected_tool is not None:
            return human.expected_tool, dict(
                human.expected_arguments if human.expected_arguments is not None else self.action.arguments
            )
        if self.action.tool is None:
            return None
        return self.action.tool, dict(self.action.arguments)

    def to_document(self) -> dict[str, Any]:
        """The JSON document stored and exported (timestamps as ISO strings with Z)."""
        doc = self.model_dump(mode="json")
        doc["timestamp"] = format_timestamp(self.timestamp)
        if self.label is not None:
            doc["label"]["labeled_at"] = format_timestamp(self.label.labeled_at)
        for stored, label in zip(doc["labels"], self.labels, strict=True):
            stored["labeled_at"] = format_timestamp(label.labeled_at)
        return doc


MAX_AUTO_LABELS = 20
"""Auto labels kept per episode (``label-batch --relabel`` can add one a run); human labels are all kept."""


def effective_label(labels: list[Label]) -> Label | None:
    """The label that counts: the latest human one, else the latest auto one (None when unlabeled)."""
    for label in reversed(labels):
        if label.source == "human":
            return label
    return labels[-1] if labels else None


def append_label(labels: list[Label], label: Label) -> list[Label]:
    """``labels`` + ``label``, keeping every human label and the newest ``MAX_AUTO_LABELS`` auto ones."""
    history = [*labels, label]
    autos = sum(1 for item in history if item.source == "auto")
    if autos <= MAX_AUTO_LABELS:
        return history
    drop = autos - MAX_AUTO_LABELS
    kept: list[Label] = []
    for item in history:
        if item.source == "auto" and drop:
            drop -= 1
            continue
        kept.append(item)
    return kept


def is_correction(label: Label | None, action: Action) -> bool:
    """A human label naming a call other than ``action`` (another tool, or other arguments)."""
    if label is None or label.source != "human" or label.expected_tool is None:
        return False
    if label.expected_tool != action.tool:
        return True
    return label.expected_arguments is not None and label.expected_arguments != action.arguments


def is_confirmation(label: Label | None, action: Action, *, min_reward: float) -> bool:
    """A human label that vouches for ``action`` as the right call: no correction, and either the expected
    call is the action or the person accepted it (reward >= ``min_reward``)."""
    if label is None or label.source != "human" or action.tool is None or is_correction(label, action):
        return False
    return label.expected_tool == action.tool or label.score >= min_reward


REVIEW_BAND = (0.4, 0.9)
"""Judge scores in this band are the uncertain ones (the workshop's accept line, 0.7, is inside)."""
_BAND_LOW, _BAND_HIGH = REVIEW_BAND


def review_priority(label: Label | None) -> float:
    """How much a person's look at an auto-labeled episode is worth, from its auto label alone (0..1).

    Stored with every label write so the review queue reads the best candidates off an index; the
    review service re-ranks them with the agent's threshold, rarity and spread
    (``lightning/services/review.py``). Human-labeled episodes never enter the queue.
    """
    if label is None:
        return 0.3  # never scored: worth a look, below what the judge flags
    if label.source == "human":
        return 0.0
    score = label.score  # written out plainly: every auto-label write computes this
    priority = 0.35 * (1.0 - abs(score - 0.7) / 0.3) if _BAND_LOW <= score < _BAND_HIGH else 0.0
    if label.tool_correct is False:
        priority += 0.25  # the judge says the agent chose the wrong tool: one of them is wrong
    if label.expected_tool is None:
        priority += 0.2  # the judge could not tell which tool fits: its score is a guess
    if label.flags:
        priority += 0.1 if len(label.flags) == 1 else 0.2
    return round(priority, 4) if priority < 1.0 else 1.0

"""Queue message bodies for the fine-tune queues (``fine-tune-jobs``, ``fine-tune-done``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.training import Hyperparameters

FINE_TUNE_JOBS = "fine-tune-jobs"
FINE_TUNE_DONE = "fine-tune-done"


class StartFineTune(BaseModel):
    """Start a fine-tune of a built dataset (sent by the dataset timer)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["start"] = "start"
    agent_id: str
    dataset_name: str
    base_model: str | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class PollFineTune(BaseModel):
    """Advance a run from the provider's answer (scheduled after a start, then re-scheduled)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["poll"] = "poll"
    run_id: str
    attempt: int = 0


class FineTuneDone(BaseModel):
    """A run reached a terminal state (sent to ``fine-tune-done``)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent_id: str
    state: str
    fine_tuned_model: str | None = None


FineTuneJobMessage = StartFineTune | PollFineTune


class PromoteModel(BaseModel):
    """Run a promotion asked for over HTTP (sent to ``fine-tune-done`` by ``POST …/promote``): the job is
    ``ModelVersion.promotion`` of ``version_id``."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["promote"] = "promote"
    agent_id: str
    version_id: str
    job_id: str


DoneMessage = FineTuneDone | PromoteModel


def parse_done_message(body: Mapping[str, Any]) -> DoneMessage:
    """A ``fine-tune-done`` body: a promotion job (``kind: promote``) or a run's completion (no kind).
    Raises pydantic's ``ValidationError`` for a body that is neither."""
    if body.get("kind") == "promote":
        return PromoteModel.model_validate(body)
    return FineTuneDone.model_validate(body)

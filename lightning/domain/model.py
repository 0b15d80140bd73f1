"""Model versions, promotion decisions and evaluation figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow

ModelStatus = Literal[
    "registered",  # known (fine-tune succeeded), not deployed yet
    "deployed",  # deployment exists and serves requests, not active
    "active",  # the one version agents use
    "retired",  # was active, replaced by a newer one or rolled back
    "rejected",  # the promotion gate refused it
    "failed",  # deployment or rollout failed
]


class EvaluationSummary(BaseModel):
    """An offline evaluation of one model on held-out requests."""

    model_config = ConfigDict(frozen=True)

    model: str
    examples: int
    tool_accuracy: float
    argument_exact_match: float | None = None
    avg_reward: float
    error_rate: float = 0.0
    completeness: float | None = None
    evaluator: str = "rubric"
    details: dict[str, Any] = Field(default_factory=dict)


class PromotionDecision(BaseModel):
    """What the promotion gate decided and on which numbers."""

    model_config = ConfigDict(frozen=True)

    promote: bool
    reason: str
    candidate: EvaluationSummary | None = None
    baseline: EvaluationSummary | None = None
    tolerance: float = 0.0
    forced: bool = False
    decided_at: datetime = Field(default_factory=utcnow)


class ModelVersion(BaseModel):
    """A fine-tuned model of one agent, with lineage back to the episodes it learned from."""

    id: str = Field(description="Registry id, e.g. 'autonomous-agent:v3'.")
    agent_id: str
    version: int = Field(ge=1)
    model_name: str = Field(description="Provider model id, e.g. ft:gpt-4o-mini:autonomous-agent:abc123.")
    deployment_name: str | None = Field(default=None, description="What agents put in TUNED_MODEL_NAME.")
    run_id: str | None = None
    job_id: str | None = None
    dataset_name: str | None = None
    dataset_sha256: str | None = None
    episode_count: int | None = None
    status: ModelStatus = "registered"
    active: bool = False
    evaluation: EvaluationSummary | None = None
    decision: PromotionDecision | None = None
    promoted_at: datetime | None = None
    promoted_by: str | None = None
    previous_env: dict[str, str | None] | None = Field(
        default=None, description="Agent env before this version rolled out (for rollback)."
    )
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    etag: str | None = Field(default=None, exclude=True)

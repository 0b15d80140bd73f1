"""Model versions, promotion decisions and evaluation figures.

Used by the promotion and evaluation services (``lightning/services/promotion.py``,
``lightning/services/evaluation.py``) and stored by the ModelRegistry adapters.
``decide_promotion`` is the promotion gate's pure rule.
"""

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
    "rolled_back",  # was active, then rolled back; automatic rollback never returns to it
]

EvalSource = Literal[
    "validation",  # the training dataset's validation split (never trained on)
    "recent",  # a recent labeled episode the candidate's dataset did not contain
    "dataset",  # the validation split of a dataset named by the user (``evaluate --dataset``)
    "queries",  # a request from a file (``evaluate --queries``)
]


class EvalRequest(BaseModel):
    """One held-out request to replay against a model, with what a good answer looks like when known."""

    model_config = ConfigDict(frozen=True)

    query: str = Field(min_length=1)
    expected_tool: str | None = Field(default=None, description="The right tool, when a label says so.")
    expected_arguments: dict[str, Any] | None = Field(
        default=None, description="The arguments of a known-good answer (for argument exact match)."
    )
    episode_id: str | None = Field(default=None, description="The episode the request comes from.")
    source: EvalSource = "queries"


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

    @property
    def served_name(self) -> str:
        """What agents call: the deployment when there is one, else the model itself."""
        return self.deployment_name or self.model_name


def decide_promotion(
    candidate: EvaluationSummary, baseline: EvaluationSummary, *, tolerance: float
) -> PromotionDecision:
    """The gate: promote only if the candidate is not worse than the baseline beyond ``tolerance``
    on tool-selection accuracy and on average reward (both measured on the same held-out requests)."""
    if candidate.examples == 0 or baseline.examples == 0:
        return PromotionDecision(
            promote=False,
            reason="no held-out requests were evaluated: label more episodes or build a dataset with a "
            "validation split, or pass --force",
            candidate=candidate,
            baseline=baseline,
            tolerance=tolerance,
        )
    problems: list[str] = []
    if candidate.tool_accuracy < baseline.tool_accuracy - tolerance:
        problems.append(
            f"tool accuracy {candidate.tool_accuracy:.3f} < baseline {baseline.tool_accuracy:.3f} - {tolerance:g}"
        )
    if candidate.avg_reward < baseline.avg_reward - tolerance:
        problems.append(
            f"average reward {candidate.avg_reward:.3f} < baseline {baseline.avg_reward:.3f} - {tolerance:g}"
        )
    if problems:
        reason = "candidate is worse than " + baseline.model + ": " + "; ".join(problems)
    else:
        reason = (
            f"candidate is not worse than {baseline.model} within tolerance {tolerance:g} "
            f"(tool accuracy {candidate.tool_accuracy:.3f} vs {baseline.tool_accuracy:.3f}, "
            f"average reward {candidate.avg_reward:.3f} vs {baseline.avg_reward:.3f})"
        )
    return PromotionDecision(
        promote=not problems, reason=reason, candidate=candidate, baseline=baseline, tolerance=tolerance
    )

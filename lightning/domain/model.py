"""Model versions, promotion decisions and evaluation figures.

Used by the promotion and evaluation services (``lightning/services/promotion.py``,
``lightning/services/evaluation.py``) and stored by the ModelRegistry adapters.
``decide_promotion`` is the promotion gate's pure rule.

Every evaluation figure says where it comes from: ``ground_truth`` (requests whose right call a
person or a golden set gave), ``judge`` (what the evaluator thinks: its score and its idea of the
right tool) or ``observed`` (what happened: the model call failed, named no tool…). The gate
decides on ground truth when an agent has a golden set; the judge only breaks ties.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lightning.domain.episode import utcnow
from lightning.domain.statistics import two_proportion_z_test, wilson_interval

ModelStatus = Literal[
    "registered",  # known (fine-tune succeeded), not deployed yet
    "deployed",  # deployment exists and serves requests, not active
    "active",  # the one version agents use
    "retired",  # was active, replaced by a newer one or rolled back
    "rejected",  # the promotion gate refused it
    "failed",  # deployment or rollout failed
    "rolled_back",  # was active, then rolled back; automatic rollback never returns to it
    "diverged",  # a rollout failed and left the cluster running something the registry does not name
]

EvalSource = Literal[
    "validation",  # the training dataset's validation split (never trained on)
    "recent",  # a recent labeled episode the candidate's dataset did not contain
    "dataset",  # the validation split of a dataset named by the user (``evaluate --dataset``)
    "queries",  # a request from a file (``evaluate --queries``)
    "golden",  # the agent's golden set (``evaluate --golden``, the gate)
    "generated",  # a generated request with its known answer (``evaluate --generate``)
]

Truth = Literal[
    "ground_truth",  # a person or a golden set gave the right call
    "judge",  # the evaluator vouched for the call (an auto label at or above the accept line)
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
    truth: Truth | None = Field(
        default=None, description="Who says expected_tool is right (None: nobody; the judge decides)."
    )


class Rate(BaseModel):
    """A proportion with its 95% Wilson interval; ``value`` is None when nothing was counted."""

    model_config = ConfigDict(frozen=True)

    value: float | None = None
    n: int = 0
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, hits: int, n: int) -> Rate:
        if n == 0:
            return cls()
        interval = wilson_interval(hits, n)
        return cls(value=hits / n, n=n, low=interval.low, high=interval.high)

    @property
    def hits(self) -> int:
        return round((self.value or 0.0) * self.n)


class GroundTruthFigures(BaseModel):
    """Figures over requests whose right call is known from people or a golden set."""

    model_config = ConfigDict(frozen=True)

    source: Literal["ground_truth"] = "ground_truth"
    n: int = Field(default=0, description="Requests with a known right call.")
    tool_accuracy: Rate = Field(default_factory=Rate, description="The right tool, on those requests.")
    argument_exact_match: Rate = Field(
        default_factory=Rate, description="The right tool with exactly the right arguments."
    )


class JudgeFigures(BaseModel):
    """What the evaluator (rubric or judge model) estimates: an opinion, not a fact."""

    model_config = ConfigDict(frozen=True)

    source: Literal["judge"] = "judge"
    evaluator: str = Field(default="rubric", description="name@version of the evaluator.")
    n: int = 0
    tool_accuracy: Rate = Field(
        default_factory=Rate,
        description="Judge-estimated tool accuracy: the judge's idea of the right tool (or a call it vouched for).",
    )
    avg_reward: float = Field(default=0.0, description="Judge-estimated average reward (0 for failed calls).")
    completeness: Rate = Field(default_factory=Rate, description="Judge-estimated response completeness.")


class EvaluationSummary(BaseModel):
    """An offline evaluation of one model on held-out requests: ground truth, judge and observed figures."""

    model_config = ConfigDict(frozen=True)

    model: str
    examples: int
    ground_truth: GroundTruthFigures = Field(default_factory=GroundTruthFigures)
    judge: JudgeFigures = Field(default_factory=JudgeFigures)
    error_rate: Rate = Field(
        default_factory=Rate,
        description="Observed: the model call failed, made no tool call, named an unknown tool, or the tool raised.",
    )
    judge_failures: int = Field(
        default=0,
        description="Observed: answers the evaluator could not score (left out of the judge's figures).",
    )
    planned: int | None = Field(
        default=None,
        description="Requests meant to be replayed; more than examples when the time budget ran out.",
    )
    stopped_early: str | None = Field(default=None, description="Why the replay stopped before the end.")
    golden_set: str | None = Field(default=None, description="Which golden set gave the ground truth.")
    excluded_overlap: int = Field(
        default=0, description="Golden requests left out because the model trained on them."
    )
    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        """Summaries stored before provenance existed held flat, judge-based figures: read them as such."""
        if not isinstance(data, dict) or "tool_accuracy" not in data:
            return data
        data = dict(data)
        n = int(data.get("examples") or 0)
        tool = data.pop("tool_accuracy")
        data.pop("argument_exact_match", None)
        completeness = data.pop("completeness", None)
        error_rate = data.pop("error_rate", 0.0) or 0.0
        data["judge"] = {
            "evaluator": data.pop("evaluator", "rubric"),
            "n": n,
            "tool_accuracy": {"value": tool, "n": n},
            "avg_reward": data.pop("avg_reward", 0.0),
            "completeness": {"value": completeness, "n": n if completeness is not None else 0},
        }
        data["error_rate"] = {"value": error_rate, "n": n}
        return data


class PromotionDecision(BaseModel):
    """What the promotion gate decided and on which numbers."""

    model_config = ConfigDict(frozen=True)

    promote: bool
    reason: str
    candidate: EvaluationSummary | None = None
    baseline: EvaluationSummary | None = None
    tolerance: float = 0.0
    forced: bool = False
    ground_truth: bool = Field(
        default=False, description="True when ground truth decided (or could have); False: judge-only."
    )
    decided_at: datetime = Field(default_factory=utcnow)


PromotionJobState = Literal[
    "queued",  # accepted (HTTP 202), waiting on the fine-tune-done queue (or retrying after a transient error)
    "running",  # a worker is on it: ``phase`` says where
    "succeeded",  # finished: ``action`` and ``message`` say what happened (promoted, rejected, ...)
    "failed",  # a permanent error: ``error`` says why (the queue dead-letters the message)
]

PromotionPhase = Literal[
    "queued",  # not started
    "deploying",  # registering and deploying the model
    "gating",  # replaying held-out requests: ``replayed`` of ``planned``
    "rolling_out",  # patching the agent's Deployment and waiting for it
    "done",  # nothing left to do
]


class PromotionJob(BaseModel):
    """A promotion asked for over HTTP (``POST /api/models/{agent_id}/promote``), run by a queue worker.

    Kept on the version it promotes (``ModelVersion.promotion``, the latest request), so its status
    lives where the promotion's result does and survives any host restart."""

    id: str = Field(description="The job id; the queue message is promote-<id>.")
    state: PromotionJobState = "queued"
    phase: PromotionPhase = "queued"
    mark_active: bool = False
    force: bool = False
    dry_run: bool = False
    requested_by: str
    requested_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    attempts: int = Field(default=0, description="Deliveries that started running it.")
    replayed: int = Field(default=0, description="Gate progress: requests replayed so far.")
    planned: int = Field(default=0, description="Gate progress: requests the gate means to replay.")
    action: str | None = Field(default=None, description="When finished: what the promotion did.")
    message: str | None = None
    error: str | None = Field(default=None, description="The last failure (retried when transient).")

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


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
    observed_env: dict[str, str | None] | None = Field(
        default=None, description="The Deployment's env as read back after a rollout that diverged."
    )
    promotion: PromotionJob | None = Field(
        default=None, description="The latest promotion asked for over HTTP, and where it is."
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    etag: str | None = Field(default=None, exclude=True)

    @property
    def served_name(self) -> str:
        """What agents call: the deployment when there is one, else the model itself."""
        return self.deployment_name or self.model_name


class GateRule(BaseModel):
    """The gate's thresholds (from ``PromotionPolicy``)."""

    model_config = ConfigDict(frozen=True)

    tolerance: float = Field(default=0.02, description="How much worse a figure may be.")
    min_golden: int = Field(default=30, description="Ground-truth requests needed to decide on ground truth.")
    error_alpha: float = Field(default=0.05, description="One-sided significance for 'error rate worse'.")
    min_replayed: float = Field(
        default=0.5, description="Share of the planned requests that must be replayed to decide at all."
    )
    max_judge_failure_rate: float = Field(
        default=0.1, description="Share of answers the judge may fail to score before its figures are void."
    )


def _pct(rate: Rate) -> str:
    if rate.value is None:
        return "-"
    return f"{rate.value:.1%} [{(rate.low or 0):.1%}, {(rate.high or 0):.1%}] (n={rate.n})"


def _significantly_worse(candidate: Rate, baseline: Rate, alpha: float) -> float | None:
    """The one-sided p-value when the candidate's rate is higher, if it is below ``alpha``."""
    if candidate.n == 0 or baseline.n == 0 or (candidate.value or 0) <= (baseline.value or 0):
        return None
    two_sided = two_proportion_z_test(candidate.hits, candidate.n, baseline.hits, baseline.n).p_value
    one_sided = two_sided / 2
    return one_sided if one_sided < alpha else None


def decide_promotion(
    candidate: EvaluationSummary, baseline: EvaluationSummary, *, rule: GateRule | None = None
) -> PromotionDecision:
    """The gate. Both models were replayed on the same held-out requests.

    0. Enough to go on: refused when fewer than ``rule.min_replayed`` of the planned requests were
       replayed (the time budget ran out), or when the judge failed to score more than
       ``rule.max_judge_failure_rate`` of either model's answers (each failure is an error row, so a
       few do not void the gate; many do, and the reason says so).
    1. Observed errors: refused when the candidate's error rate is significantly higher (one-sided
       two-proportion test at ``rule.error_alpha``).
    2. Ground truth, when both sides have at least ``rule.min_golden`` requests with a known right
       call: refused when tool accuracy or argument exact match is lower beyond ``rule.tolerance``;
       promoted when either is higher beyond it (whatever the judge thinks).
    3. The judge decides only when ground truth ties (or is missing: the gate is then judge-only, and
       says so): refused when judge-estimated tool accuracy or average reward is lower beyond the
       tolerance.
    """
    rule = rule or GateRule()
    tol = rule.tolerance

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote=promote,
            reason=reason,
            candidate=candidate,
            baseline=baseline,
            tolerance=tol,
            ground_truth=has_truth,
        )

    has_truth = min(candidate.ground_truth.n, baseline.ground_truth.n) >= rule.min_golden
    if candidate.examples == 0 or baseline.examples == 0:
        return decision(
            False,
            "no held-out requests were evaluated: label more episodes, import a golden set or build a "
            "dataset with a validation split, or pass --force",
        )
    planned = candidate.planned or candidate.examples
    if candidate.examples < rule.min_replayed * planned:
        return decision(
            False,
            f"only {candidate.examples} of {planned} held-out requests were replayed "
            f"({candidate.stopped_early or 'the replay stopped early'}); at least {rule.min_replayed:.0%} "
            "are needed to decide: raise GATE_TIME_BUDGET_SECONDS (and FUNCTION_TIMEOUT_SECONDS), "
            "or lower GATE_MAX_REQUESTS",
        )
    for summary in (candidate, baseline):
        failed = summary.judge_failures / summary.examples
        if failed > rule.max_judge_failure_rate:
            return decision(
                False,
                f"the judge could not score {summary.judge_failures} of {summary.examples} answers of "
                f"{summary.model} ({failed:.0%} > GATE_MAX_JUDGE_FAILURE_RATE {rule.max_judge_failure_rate:.0%}): "
                "its figures are not reliable; promote again once the judge is healthy",
            )
    p = _significantly_worse(candidate.error_rate, baseline.error_rate, rule.error_alpha)
    if p is not None:
        return decision(
            False,
            f"error rate (observed) is significantly worse than {baseline.model}: "
            f"{_pct(candidate.error_rate)} vs {_pct(baseline.error_rate)}, p={p:.3f}",
        )
    truth_line = ""
    if has_truth:
        gt_c, gt_b = candidate.ground_truth, baseline.ground_truth
        worse: list[str] = []
        better: list[str] = []
        for name, c, b in (
            ("tool accuracy", gt_c.tool_accuracy, gt_b.tool_accuracy),
            ("argument exact match", gt_c.argument_exact_match, gt_b.argument_exact_match),
        ):
            if c.value is None or b.value is None:
                continue
            if c.value < b.value - tol:
                worse.append(f"{name} {_pct(c)} < {_pct(b)} - {tol:g}")
            elif c.value > b.value + tol:
                better.append(f"{name} {_pct(c)} > {_pct(b)} + {tol:g}")
        if worse:
            return decision(False, f"worse than {baseline.model} on ground truth: " + "; ".join(worse))
        if better:
            return decision(True, f"better than {baseline.model} on ground truth: " + "; ".join(better))
        truth_line = (
            f"ground truth ties (tool accuracy {_pct(gt_c.tool_accuracy)} vs {_pct(gt_b.tool_accuracy)}); "
        )
    else:
        truth_line = (
            f"judge-only gate (fewer than {rule.min_golden} requests with known answers: "
            f"{min(candidate.ground_truth.n, baseline.ground_truth.n)}); "
        )
    problems: list[str] = []
    jc, jb = candidate.judge, baseline.judge
    jc_tool, jb_tool = jc.tool_accuracy.value, jb.tool_accuracy.value
    if jc_tool is not None and jb_tool is not None and jc_tool < jb_tool - tol:
        problems.append(f"judge-estimated tool accuracy {jc_tool:.3f} < {jb_tool:.3f} - {tol:g}")
    if jc.avg_reward < jb.avg_reward - tol:
        problems.append(f"judge-estimated average reward {jc.avg_reward:.3f} < {jb.avg_reward:.3f} - {tol:g}")
    if problems:
        return decision(
            False, truth_line + f"the judge finds it worse than {baseline.model}: " + "; ".join(problems)
        )
    tool_text = (
        f"judge-estimated tool accuracy {jc_tool:.3f} vs {jb_tool:.3f}, "
        if jc_tool is not None and jb_tool is not None
        else ""
    )
    return decision(
        True,
        truth_line + f"the judge finds it not worse than {baseline.model} within {tol:g} ({tool_text}"
        f"judge-estimated average reward {jc.avg_reward:.3f} vs {jb.avg_reward:.3f})",
    )

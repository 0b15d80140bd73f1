"""The loop's status for one agent: is the judge trusted, what was built, trained and promoted.

Called by ``GET /api/status`` (the Functions app and the console) and the demo report. Reads only;
every figure keeps its provenance (the models' stored gate evaluations name ground truth and judge
figures apart).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lightning.domain.model import EvaluationSummary, ModelVersion
from lightning.domain.training import progress_percent
from lightning.ports.bundles import StatusPorts
from lightning.ports.episodes import EpisodeQuery
from lightning.services.calibration import JudgeReport, judge_report
from lightning.services.loop import LoopPolicy

RECENT = 10


class BeforeAfter(BaseModel):
    """The active model against the one before it, on the ground truth of its promotion gate."""

    active: str
    previous: str
    golden_set: str | None = None
    active_figures: EvaluationSummary
    previous_figures: EvaluationSummary


class LoopStatus(BaseModel):
    agent_id: str
    judge: JudgeReport
    golden_examples: int
    episodes: int
    human_labeled: int
    datasets: list[dict[str, Any]] = Field(default_factory=list, description="Newest first.")
    runs: list[dict[str, Any]] = Field(default_factory=list, description="Newest first, with progress.")
    models: list[dict[str, Any]] = Field(default_factory=list, description="Newest first, with gate results.")
    active_version: str | None = None
    before_after: BeforeAfter | None = None


def _figures(summary: EvaluationSummary | None) -> dict[str, Any] | None:
    """A side of a gate decision: its ground-truth and judge figures (per-request details left out)."""
    return None if summary is None else summary.model_dump(mode="json", exclude={"details"})


def _model_row(version: ModelVersion) -> dict[str, Any]:
    decision = version.decision
    return {
        "id": version.id,
        "version": version.version,
        "model_name": version.model_name,
        "deployment_name": version.deployment_name,
        "status": version.status,
        "active": version.active,
        "dataset_name": version.dataset_name,
        "promoted_at": version.promoted_at,
        "gate": None
        if decision is None
        else {
            "promote": decision.promote,
            "forced": decision.forced,
            "ground_truth": decision.ground_truth,
            "reason": decision.reason,
            "candidate": _figures(decision.candidate),
            "baseline": _figures(decision.baseline),
        },
    }


def loop_status(agent_id: str, ports: StatusPorts, policy: LoopPolicy) -> LoopStatus:
    """The agent's loop state (see the module docstring); unknown agent → ``NotFound``."""
    ports.agents.get(agent_id)
    versions = ports.models.list(agent_id)
    active = next((v for v in versions if v.active), None)
    before_after = None
    if active is not None and active.decision is not None:
        decision = active.decision
        if decision.candidate is not None and decision.baseline is not None:
            before_after = BeforeAfter(
                active=decision.candidate.model,
                previous=decision.baseline.model,
                golden_set=decision.candidate.golden_set,
                active_figures=decision.candidate,
                previous_figures=decision.baseline,
            )
    return LoopStatus(
        agent_id=agent_id,
        judge=judge_report(
            agent_id, episodes=ports.episodes, golden=ports.golden, policy=policy.datasets.calibration
        ),
        golden_examples=ports.golden.count(agent_id),
        episodes=ports.episodes.count(EpisodeQuery(agent_id=agent_id)),
        human_labeled=ports.episodes.count(EpisodeQuery(agent_id=agent_id, human_labeled=True)),
        datasets=[
            {
                "name": m.name,
                "created_at": m.created_at,
                "examples": m.examples("train") + m.examples("validation"),
                "corrected_examples": m.corrected_examples,
                "confirmed_examples": m.confirmed_examples,
                "human_only": bool(m.filters.get("human_only")),
            }
            for m in ports.datasets.list(agent_id=agent_id)[:RECENT]
        ],
        runs=[
            {
                "id": run.id,
                "job_id": run.job_id,
                "state": run.state,
                "dataset_name": run.dataset_name,
                "progress_percent": progress_percent(run),
                "fine_tuned_model": run.fine_tuned_model,
                "created_at": run.created_at,
                "error": run.error,
            }
            for run in ports.runs.list(agent_id=agent_id, limit=RECENT)
        ],
        models=[_model_row(v) for v in versions[:RECENT]],
        active_version=active.id if active is not None else None,
        before_after=before_after,
    )

"""The demo's HTML report: what loop_status says, drawn as one self-contained page, text escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lightning.console.report import TimelineMark, render_report
from lightning.domain.model import EvaluationSummary, GroundTruthFigures, JudgeFigures, Rate
from lightning.services.calibration import JudgeReport, Trust
from lightning.services.status import BeforeAfter, LoopStatus

T = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


def figures(model: str, tool: float, args: float) -> EvaluationSummary:
    return EvaluationSummary(
        model=model,
        examples=99,
        ground_truth=GroundTruthFigures(
            n=99,
            tool_accuracy=Rate(value=tool, n=99, low=tool - 0.08, high=tool + 0.05),
            argument_exact_match=Rate(value=args, n=99, low=args - 0.09, high=args + 0.07),
        ),
        judge=JudgeFigures(n=200, tool_accuracy=Rate(value=0.9, n=200, low=0.85, high=0.93), avg_reward=0.8),
        error_rate=Rate(value=0.01, n=300, low=0.003, high=0.029),
        golden_set="autonomous-agent golden set (117 examples)",
    )


def status() -> LoopStatus:
    new, old = figures("ft:new<script>alert(1)</script>", 0.848, 0.747), figures("local-base", 0.646, 0.465)
    return LoopStatus(
        agent_id="autonomous-agent",
        judge=JudgeReport(
            agent_id="autonomous-agent",
            evaluators=["task_adherence@rubric-2"],
            min_reward=0.7,
            compared=30,
            from_human=30,
            agreement=Rate(value=0.9, n=30, low=0.74, high=0.97),
            precision=Rate(value=0.8, n=10, low=0.49, high=0.94),
            tool_confusion={"sales_report": {"sales_forecast": 3, "sales_report": 5}},
            trust=Trust(trusted=False, reason="judge precision 0.80 < 0.9", min_precision=0.9, min_compared=30),
        ),
        golden_examples=117,
        episodes=1100,
        human_labeled=30,
        datasets=[{"name": "v1", "created_at": T, "examples": 180, "corrected_examples": 30, "confirmed_examples": 0, "human_only": False}],
        runs=[{"id": "run-1", "job_id": "ftjob-1", "state": "succeeded", "dataset_name": "v1", "progress_percent": 100, "fine_tuned_model": "ft:new", "created_at": T, "error": None}],
        models=[
            {
                "id": "autonomous-agent:v1", "version": 1, "model_name": "ft:new", "status": "active", "active": True,
                "promoted_at": T, "dataset_name": "v1", "deployment_name": "ft:new",
                "gate": {"promote": True, "forced": False, "ground_truth": True, "reason": "better on ground truth",
                         "candidate": new.model_dump(mode="json"), "baseline": old.model_dump(mode="json")},
            }
        ],
        active_version="autonomous-agent:v1",
        before_after=BeforeAfter(active=new.model, previous=old.model, golden_set=new.golden_set, active_figures=new, previous_figures=old),
    )  # fmt: skip


def test_the_report_draws_the_status_with_provenance() -> None:
    html = render_report(
        status(),
        generated_at=T,
        marks=[TimelineMark(at=T.replace(hour=9), title="Traffic <b>sent</b>", detail="seed 1")],
        explore="LIGHTNING_HOME=/tmp/x lightning-loop serve-console",
    )
    assert html.startswith("<!doctype html>")
    for section in ('id="summary"', 'id="timeline"', 'id="before-after"', 'id="judge"'):
        assert section in html
    assert html.count("<svg") == 2  # the before/after chart and the judge's intervals
    assert "84.8% [76.8%, 89.8%] (n=99)" in html  # ground truth, with its interval
    assert "64.6% [56.6%, 69.6%] (n=99)" in html
    assert "ground truth" in html
    assert "judge-estimated" in html
    assert "0.800 [0.490, 0.940] (n=10)" in html  # the judge's precision, a figure of the judge report
    assert "NOT trusted" in html
    assert "lightning-loop serve-console" in html
    # text from the store and the caller is escaped: no markup of theirs survives
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>sent</b>" not in html
    assert not re.search(r"<script\b", html)
    # the timeline is in time order: the caller's mark (09:00) before the dataset (10:00)
    assert html.index("Traffic &lt;b&gt;sent") < html.index("Dataset v1 built")


def test_a_gate_without_a_golden_set_says_there_is_no_ground_truth() -> None:
    plain = status()
    empty = EvaluationSummary(model="x", examples=0)
    plain.before_after = BeforeAfter(
        active="x",
        previous="y",
        active_figures=empty,
        previous_figures=empty.model_copy(update={"model": "y"}),
    )
    plain.models = []
    html = render_report(plain, generated_at=T)
    assert "No ground truth: this gate had no golden set" in html

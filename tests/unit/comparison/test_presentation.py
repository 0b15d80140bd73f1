"""The compare-versions table, markdown and verdict as people read them, and where each figure comes from."""

from __future__ import annotations

from lightning.commands.presentation import (
    figure_name,
    figure_source,
    render_markdown,
    report_document,
    source_footnote,
    table_columns,
    table_rows,
    verdict_reason,
)
from lightning.domain.episode import Episode
from lightning.services.comparison import CompareRequest, ComparisonReport, compare_versions
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.unit.comparison.generate import AGENT, DAY1, DAY2, side

WORSE_MODEL = {"tool_accuracy": 0.6, "reward_mean": 0.55, "error_rate": 0.12, "complete_rate": 0.7}
BETTER_MODEL = {"tool_accuracy": 0.9, "reward_mean": 0.78, "error_rate": 0.03, "complete_rate": 0.9}


def _compare(before: list[Episode], after: list[Episode], **overrides: object) -> ComparisonReport:
    fields: dict[str, object] = {
        "agent_id": AGENT,
        "before_date": "2026-02-07T00:00:00Z",
        "after_date": "2026-02-07T12:00:00Z",
        "resamples": 500,
        **overrides,
    }
    store = InMemoryEpisodeStore([*before, *after])
    return compare_versions(CompareRequest.model_validate(fields), episodes=store)


def _by_people(episodes: list[Episode]) -> list[Episode]:
    return [
        e.with_label(e.label.model_copy(update={"source": "human", "evaluator": None})) if e.label else e
        for e in episodes
    ]


def _improved() -> ComparisonReport:
    return _compare(
        side(200, prefix="b", start=DAY1, **WORSE_MODEL),
        side(200, prefix="a", start=DAY2, seed=2, **BETTER_MODEL),
    )


def test_table_and_markdown_follow_the_workshop() -> None:
    report = _improved()
    assert table_columns(report)[:3] == ["Metric", "Before Fine-Tuning", "After Fine-Tuning"]
    names = [row[0] for row in table_rows(report)]
    assert names[:4] == [
        "Tool Selection Accuracy % *",
        "Response Completeness %",
        "Average Reward Score *",
        "Error Rate % *",
    ]
    assert names[4:] == ["Latency p50", "Latency p95", "Episodes (labeled)"]
    first = table_rows(report)[0]
    assert first[1].startswith("60.0% (n=200) [")
    assert table_rows(report, multiline=True)[0][1].startswith("60.0% (n=200)\n[")
    assert first[3].startswith("+30.0 pp [")
    assert first[4] == "<0.001"
    markdown = render_markdown(report)
    assert (
        "| Metric | Before Fine-Tuning | After Fine-Tuning | Difference | p-value | Result | Source |"
        in markdown
    )
    assert "| --- | --- | --- | --- | --- | --- | --- |" in markdown
    assert "**Verdict: candidate better**" in markdown


def test_every_row_says_where_its_figure_comes_from() -> None:
    report = _improved()
    sources = {row[0]: row[-1] for row in table_rows(report)}
    assert sources == {
        "Tool Selection Accuracy % *": "judge-estimated (rubric)",
        "Response Completeness %": "judge-estimated (rubric)",
        "Average Reward Score *": "judge-estimated (rubric)",
        "Error Rate % *": "ground truth",
        "Latency p50": "ground truth",
        "Latency p95": "ground truth",
        "Episodes (labeled)": "ground truth",
    }
    assert source_footnote(report).startswith("Source: judge-estimated = from an evaluator's labels (rubric)")
    assert source_footnote(report) in render_markdown(report)
    assert figure_name(report.metric("tool_accuracy")) == "Tool Selection Accuracy (judge-estimated)"
    assert figure_name(report.metric("error_rate")) == "Error Rate"


def test_figures_from_peoples_labels_are_named_ground_truth() -> None:
    report = _compare(
        _by_people(side(100, prefix="b", start=DAY1, **WORSE_MODEL)),
        _by_people(side(100, prefix="a", start=DAY2, seed=2, **BETTER_MODEL)),
    )
    assert {row[-1] for row in table_rows(report)} == {"ground truth"}
    assert source_footnote(report) == "Source: ground truth = recorded on the episodes or labeled by people."
    assert "judge" not in verdict_reason(report)
    assert figure_source(report, report.metric("tool_accuracy")) == "ground truth"


def test_the_verdict_names_the_judges_figures_as_estimates() -> None:
    report = _improved()
    reason = verdict_reason(report)
    assert reason.startswith("significant improvement in judge-estimated Tool Selection Accuracy (+30.0 pp [")
    assert ", Error Rate (-" in reason  # ground truth: no qualifier
    assert reason.endswith("; no significant regression")
    worse = _compare(
        side(200, prefix="b", start=DAY1, **BETTER_MODEL),
        side(200, prefix="a", start=DAY2, seed=2, **WORSE_MODEL),
    )
    assert verdict_reason(worse).startswith(
        "significant regression in judge-estimated Tool Selection Accuracy"
    )
    short = _compare(
        side(200, prefix="b", start=DAY1, **WORSE_MODEL),
        side(12, prefix="a", start=DAY2, seed=2, **BETTER_MODEL),
    )
    assert verdict_reason(short) == (
        "judge-estimated Tool Selection Accuracy has 12 usable episodes on the After Fine-Tuning side; "
        "a verdict needs at least 30 on each side (capture and label more episodes, or widen the window)"
    )
    same = _compare(
        side(200, prefix="b", start=DAY1, seed=3, **WORSE_MODEL),
        side(220, prefix="a", start=DAY2, seed=4, **WORSE_MODEL),
    )
    assert verdict_reason(same) == (
        "no primary metric (tool accuracy, average reward, error rate) changed significantly"
    )


def test_the_json_document_keeps_the_reason_beside_the_data() -> None:
    report = _improved()
    document = report_document(report)
    assert list(document["verdict"])[:3] == ["outcome", "line", "reason"]
    assert document["verdict"]["reason"] == verdict_reason(report)
    assert document["verdict"]["metrics"] == ["tool_accuracy", "avg_reward", "error_rate"]
    assert [row["source"] for row in document["metrics"]][:4] == ["judge", "judge", "judge", "ground_truth"]

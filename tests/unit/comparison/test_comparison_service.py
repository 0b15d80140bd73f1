"""compare_versions on generated episodes with known effects, over the in-memory EpisodeStore."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lightning.domain.episode import Episode
from lightning.domain.errors import InvalidInput
from lightning.services.comparison import (
    CompareRequest,
    ComparisonReport,
    MetricComparison,
    SideMetric,
    adjust_primary,
    compare_versions,
)
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.unit.comparison.generate import AGENT, DAY1, DAY2, side

BEFORE = "2026-02-07T00:00:00Z"
AFTER = "2026-02-07T12:00:00Z"


def _request(**overrides: object) -> CompareRequest:
    fields: dict[str, object] = {
        "agent_id": AGENT,
        "before_date": BEFORE,
        "after_date": AFTER,
        "resamples": 1000,
    }
    fields.update(overrides)
    return CompareRequest.model_validate(fields)


def _compare(before: list, after: list, **overrides: object) -> ComparisonReport:
    store = InMemoryEpisodeStore([*before, *after])
    return compare_versions(_request(**overrides), episodes=store)


WORSE_MODEL = {"tool_accuracy": 0.6, "reward_mean": 0.55, "error_rate": 0.12, "complete_rate": 0.7}
BETTER_MODEL = {"tool_accuracy": 0.9, "reward_mean": 0.78, "error_rate": 0.03, "complete_rate": 0.9}


def test_clear_improvement_is_candidate_better() -> None:
    report = _compare(
        side(200, prefix="b", start=DAY1, **WORSE_MODEL),
        side(200, prefix="a", start=DAY2, seed=2, **BETTER_MODEL),
    )
    assert report.verdict.outcome == "better"
    assert report.verdict.line == "Verdict: candidate better"
    accuracy = report.metric("tool_accuracy")
    assert accuracy.baseline.value == pytest.approx(0.6)
    assert accuracy.candidate.value == pytest.approx(0.9)
    assert accuracy.difference == pytest.approx(0.3)
    assert accuracy.result == "better"
    assert accuracy.adjusted_p_value is not None
    assert accuracy.adjusted_p_value < 0.001
    assert report.metric("error_rate").result == "better"  # lower is better
    assert report.metric("avg_reward").result == "better"
    assert report.baseline.episodes == report.candidate.episodes == 200


def test_same_model_is_no_significant_difference() -> None:
    report = _compare(
        side(200, prefix="b", start=DAY1, seed=3, **WORSE_MODEL),
        side(220, prefix="a", start=DAY2, seed=4, **WORSE_MODEL),
    )
    assert report.verdict.outcome == "no_difference"
    assert report.verdict.line == "Verdict: no significant difference"
    for key in ("tool_accuracy", "avg_reward", "error_rate"):
        row = report.metric(key)
        assert row.result == "no_difference"
        assert row.difference_low is not None
        assert row.difference_high is not None
        assert row.difference_low <= 0.0 <= row.difference_high, key


def test_regression_is_candidate_worse() -> None:
    report = _compare(
        side(200, prefix="b", start=DAY1, **BETTER_MODEL),
        side(200, prefix="a", start=DAY2, seed=2, **WORSE_MODEL),
    )
    assert report.verdict.outcome == "worse"
    assert report.verdict.line == "Verdict: candidate worse"
    assert "tool_accuracy" in report.verdict.metrics


def test_a_regression_is_not_traded_for_an_improvement() -> None:
    before = side(300, prefix="b", start=DAY1, tool_accuracy=0.6, reward_mean=0.6, error_rate=0.02)
    after = side(300, prefix="a", start=DAY2, seed=2, tool_accuracy=0.9, reward_mean=0.6, error_rate=0.15)
    report = _compare(before, after)
    assert report.metric("tool_accuracy").result == "better"
    assert report.metric("error_rate").result == "worse"
    assert report.verdict.outcome == "worse"


def test_too_few_episodes_on_one_side_is_not_enough_data() -> None:
    report = _compare(
        side(200, prefix="b", start=DAY1, **WORSE_MODEL),
        side(12, prefix="a", start=DAY2, seed=2, **BETTER_MODEL),
    )
    assert report.verdict.outcome == "not_enough_data"
    assert report.verdict.line == "Verdict: not enough data (n=12)"
    assert (report.verdict.metrics, report.verdict.short_side) == (["tool_accuracy"], "candidate")
    row = report.metric("tool_accuracy")
    assert row.result == "not_enough_data"
    assert row.note == "not enough data (n=12)"
    assert row.p_value is None
    # The side's own figure and interval are still shown.
    assert row.candidate.value is not None
    assert row.candidate.low is not None
    reward = report.metric("avg_reward")
    assert reward.candidate.n == 12
    assert reward.candidate.low is not None


def test_too_few_labeled_episodes_is_not_enough_data_even_with_many_episodes() -> None:
    report = _compare(
        side(200, prefix="b", start=DAY1, **WORSE_MODEL),
        side(200, prefix="a", start=DAY2, seed=2, labeled=20, **BETTER_MODEL),
    )
    assert report.verdict.line == "Verdict: not enough data (n=20)"
    # Error rate rests on all 200 episodes, so it is still tested.
    assert report.metric("error_rate").p_value is not None
    assert report.candidate.labeled == 20
    assert any("Unlabeled episodes" in note for note in report.notes)


def test_min_samples_is_configurable() -> None:
    before = side(20, prefix="b", start=DAY1, **WORSE_MODEL)
    after = side(20, prefix="a", start=DAY2, seed=2, **BETTER_MODEL)
    assert _compare(before, after).verdict.outcome == "not_enough_data"
    assert _compare(before, after, min_samples=10).verdict.outcome != "not_enough_data"


def test_episodes_without_tool_information_are_left_out_and_counted() -> None:
    with_info = side(100, prefix="b", start=DAY1, tool_accuracy=0.5)
    without = side(
        20, prefix="bx", start=DAY1 + timedelta(hours=3), tool_accuracy=1.0, tool_info=False, seed=9
    )
    after = side(100, prefix="a", start=DAY2, tool_accuracy=0.5, seed=2, explicit_tool_correct=True)
    report = _compare([*with_info, *without], after)
    row = report.metric("tool_accuracy")
    assert row.baseline.n == 100
    assert row.baseline.value == pytest.approx(0.5)
    assert row.candidate.value == pytest.approx(0.5)  # from label.tool_correct this time
    assert report.baseline.tool_unknown == 20
    assert report.baseline.labeled == 120
    assert any("no expected tool: 20 on the Before Fine-Tuning side" in note for note in report.notes)


def test_date_sides_are_before_and_from_the_dates() -> None:
    # Episodes between the dates belong to neither side.
    before = side(40, prefix="b", start=DAY1)
    middle = side(40, prefix="m", start=DAY1 + timedelta(days=1, hours=2), seed=5)
    after = side(40, prefix="a", start=DAY2, seed=2)
    report = _compare(before, [*middle, *after], min_samples=10)
    assert report.baseline.episodes == 40
    assert report.candidate.episodes == 40
    assert report.baseline.last_timestamp is not None
    assert report.baseline.last_timestamp < DAY1 + timedelta(days=1)
    assert report.mode == "dates"
    assert report.baseline.label == "Before Fine-Tuning"


def test_sides_by_model_version_with_a_window() -> None:
    base = side(60, prefix="b", start=DAY1, model_version="local-base", **WORSE_MODEL)
    tuned = side(60, prefix="a", start=DAY1, model_version="ft:local:v1", seed=2, **BETTER_MODEL)
    old = side(60, prefix="o", start=DAY1 - timedelta(days=5), model_version="local-base", seed=6)
    report = compare_versions(
        CompareRequest(
            agent_id=AGENT,
            baseline_model="local-base",
            candidate_model="ft:local:v1",
            since=DAY1,
            resamples=500,
        ),
        episodes=InMemoryEpisodeStore([*base, *tuned, *old]),
    )
    assert report.mode == "models"
    assert report.baseline.episodes == 60  # the old ones are outside the window
    assert report.baseline.model_versions == {"local-base": 60}
    assert report.baseline.label == "Baseline (local-base)"
    assert report.verdict.outcome == "better"


def test_other_agents_episodes_are_not_counted() -> None:
    mine = side(40, prefix="b", start=DAY1)
    theirs = side(40, prefix="x", start=DAY1, agent_id="approval-agent")
    after = side(40, prefix="a", start=DAY2, seed=2)
    report = _compare([*mine, *theirs], after)
    assert report.baseline.episodes == 40


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"before_date": AFTER, "after_date": BEFORE}, "is later than --after-date"),
        ({"after_date": None}, "--before-date and --after-date"),
        ({"before_date": None, "after_date": None, "baseline_model": "m1"}, "go together"),
        (
            {"before_date": None, "after_date": None, "baseline_model": "m", "candidate_model": "m"},
            "both 'm'",
        ),
        ({"since": AFTER, "until": BEFORE}, "must be earlier than --until"),
    ],
)
def test_flags_that_cannot_mean_anything_are_refused(overrides: dict[str, object], message: str) -> None:
    store = InMemoryEpisodeStore(side(40, prefix="b", start=DAY1))
    with pytest.raises(InvalidInput, match=message):
        compare_versions(_request(**overrides), episodes=store)


def test_an_empty_side_names_its_window() -> None:
    store = InMemoryEpisodeStore(side(40, prefix="b", start=DAY1))
    with pytest.raises(
        InvalidInput, match=r"no episodes for the After Fine-Tuning side .*timestamp >= 2026-02-07T12:00:00Z"
    ):
        compare_versions(_request(), episodes=store)
    with pytest.raises(InvalidInput, match="model_version 'nope'"):
        compare_versions(
            CompareRequest(agent_id=AGENT, baseline_model="nope", candidate_model="other"), episodes=store
        )


def test_same_seed_gives_the_same_report() -> None:
    before = side(100, prefix="b", start=DAY1, **WORSE_MODEL)
    after = side(100, prefix="a", start=DAY2, seed=2, **BETTER_MODEL)
    first = _compare(before, after, seed=7)
    second = _compare(before, after, seed=7)
    assert first.model_dump(exclude={"generated_at"}) == second.model_dump(exclude={"generated_at"})
    # And the JSON round-trips.
    assert ComparisonReport.model_validate_json(first.model_dump_json()) == first


def _row(key: str, p_value: float, difference: float) -> MetricComparison:
    return MetricComparison(
        key=key,
        name=key,
        unit="percent",
        higher_is_better=True,
        primary=True,
        source="judge",
        test="t",
        baseline=SideMetric(n=100),
        candidate=SideMetric(n=100),
        difference=difference,
        p_value=p_value,
        result="better",
    )


def test_holm_keeps_a_lone_borderline_p_value_from_deciding() -> None:
    rows = adjust_primary([_row("a", 0.03, 0.05), _row("b", 0.6, 0.01), _row("c", 0.9, 0.0)], alpha=0.05)
    assert rows[0].adjusted_p_value == pytest.approx(0.09)
    assert [row.result for row in rows] == ["no_difference"] * 3
    strong = adjust_primary([_row("a", 0.001, 0.2), _row("b", 0.6, 0.01), _row("c", 0.9, 0.0)], alpha=0.05)
    assert strong[0].result == "better"


def _relabel(episodes: list[Episode], *, by_people: int) -> list[Episode]:
    """The first ``by_people`` labels given by a person instead of the rubric."""
    out = []
    for i, episode in enumerate(episodes):
        if i < by_people and episode.label is not None:
            episode = episode.with_label(
                episode.label.model_copy(update={"source": "human", "evaluator": None})
            )
        out.append(episode)
    return out


def test_figures_from_an_evaluators_labels_are_the_judges_and_the_rest_ground_truth() -> None:
    report = _compare(
        side(100, prefix="b", start=DAY1, **WORSE_MODEL),
        side(100, prefix="a", start=DAY2, seed=2, **BETTER_MODEL),
    )
    sources = {row.key: row.source for row in report.metrics}
    assert sources == {
        "tool_accuracy": "judge",
        "completeness": "judge",
        "avg_reward": "judge",
        "error_rate": "ground_truth",
        "latency_p50": "ground_truth",
        "latency_p95": "ground_truth",
    }
    assert report.baseline.label_sources == {"rubric": 100}


def test_figures_from_peoples_labels_only_are_ground_truth_and_one_judged_label_makes_an_estimate() -> None:
    before = _relabel(side(100, prefix="b", start=DAY1, **WORSE_MODEL), by_people=100)
    after = _relabel(side(100, prefix="a", start=DAY2, seed=2, **BETTER_MODEL), by_people=100)
    report = _compare(before, after)
    assert {row.source for row in report.metrics} == {"ground_truth"}
    assert report.candidate.label_sources == {"human": 100}
    mixed = _compare(
        before, _relabel(side(100, prefix="a", start=DAY2, seed=2, **BETTER_MODEL), by_people=99)
    )
    assert mixed.metric("tool_accuracy").source == "judge"
    assert mixed.metric("avg_reward").source == "judge"
    assert mixed.metric("error_rate").source == "ground_truth"
    assert mixed.candidate.label_sources == {"human": 99, "rubric": 1}


def test_a_reward_with_no_label_to_say_who_gave_it_is_not_ground_truth() -> None:
    before = _relabel(side(60, prefix="b", start=DAY1), by_people=60)
    after = [
        e.model_copy(update={"label": None})
        for e in _relabel(side(60, prefix="a", start=DAY2, seed=2), by_people=60)
    ]
    report = _compare(before, after)
    assert report.metric("avg_reward").source == "judge"
    assert report.candidate.label_sources == {"unknown": 60}
    # Tool accuracy and completeness need a label: only people's labels are behind them here.
    assert report.metric("tool_accuracy").source == "ground_truth"

"""judge_report: the judge's accept decisions against people and golden answers; the trust floor."""

from __future__ import annotations

from lightning.domain.episode import Episode, Label
from lightning.domain.golden import GoldenExample
from lightning.services.calibration import CalibrationPolicy, judge_report
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode
from tests.fakes.golden import InMemoryGoldenStore

AGENT = "autonomous-agent"
POLICY = CalibrationPolicy(min_reward=0.7, min_precision=0.9, min_compared=30, resamples=200)


def judged(i: int, *, judge: float, human: float | None = None, expected: str | None = None) -> Episode:
    episode = make_episode(f"e{i:03d}", query=f"churn question {i}")
    episode = episode.with_label(
        Label(source="auto", score=judge, expected_tool="analyze_churn", evaluator="rubric")
    )
    if human is not None:
        episode = episode.with_label(
            Label(
                source="human",
                score=human,
                expected_tool=expected,
                expected_arguments={"risk_level": "high"} if expected == "customer_segments" else None,
            )
        )
    return episode


def test_precision_recall_and_agreement_from_human_labels() -> None:
    episodes = (
        [judged(i, judge=0.9, human=0.95) for i in range(20)]  # accepted, right
        + [
            judged(20 + i, judge=0.9, human=0.2, expected="customer_segments") for i in range(10)
        ]  # accepted, wrong
        + [judged(30 + i, judge=0.5, human=0.9) for i in range(10)]  # rejected, right
        + [judged(40 + i, judge=0.5) for i in range(5)]  # no truth: not compared
    )
    report = judge_report(
        AGENT, episodes=InMemoryEpisodeStore(episodes), golden=InMemoryGoldenStore(), policy=POLICY
    )
    assert report.compared == 40
    assert report.from_human == 40
    assert report.precision.value == 20 / 30
    assert report.recall.value == 20 / 30
    assert report.agreement.value == 20 / 40
    assert report.precision.low is not None
    assert report.precision.low < 20 / 30 < (report.precision.high or 0)
    assert report.cohen_kappa.value is not None
    assert report.tool_confusion["analyze_churn"] == {"analyze_churn": 30, "customer_segments": 10}
    assert not report.trust.trusted
    assert "human labels only" in report.trust.reason


def test_the_judge_is_trusted_until_there_is_enough_evidence() -> None:
    episodes = [judged(i, judge=0.9, human=0.1) for i in range(10)]
    report = judge_report(
        AGENT, episodes=InMemoryEpisodeStore(episodes), golden=InMemoryGoldenStore(), policy=POLICY
    )
    assert report.precision.value == 0.0
    assert report.trust.trusted
    assert "10 of 30" in report.trust.reason


def test_reviews_bring_the_judge_back_above_the_floor() -> None:
    bad = [judged(i, judge=0.9, human=0.1) for i in range(5)]
    good = [judged(10 + i, judge=0.9, human=0.95) for i in range(60)]
    report = judge_report(
        AGENT, episodes=InMemoryEpisodeStore(bad + good), golden=InMemoryGoldenStore(), policy=POLICY
    )
    assert report.precision.value == 60 / 65
    assert report.trust.trusted


def test_golden_answers_are_compared_with_episodes_of_the_same_request() -> None:
    golden = InMemoryGoldenStore()
    golden.put(
        [
            GoldenExample.of(
                agent_id=AGENT,
                query="Churn question 1?",
                expected_tool="analyze_churn",
                expected_arguments={"period": "Q4 2025"},
            ),
            GoldenExample.of(
                agent_id=AGENT,
                query="churn question 2",
                expected_tool="customer_segments",
                expected_arguments={"risk_level": "high"},
            ),
        ]
    )
    store = InMemoryEpisodeStore([judged(1, judge=0.9), judged(2, judge=0.9), judged(3, judge=0.9)])
    report = judge_report(AGENT, episodes=store, golden=golden, policy=POLICY)
    assert (report.compared, report.from_golden) == (2, 2)
    assert report.precision.value == 0.5

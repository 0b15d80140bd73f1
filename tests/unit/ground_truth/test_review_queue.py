"""review_queue: most informative first, never a human-labeled episode, each item says why."""

from __future__ import annotations

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.episode import Episode, Label
from lightning.domain.errors import InvalidInput
from lightning.services.review import ReviewPolicy, ReviewRequest, review_queue
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode

AGENT = "autonomous-agent"


def auto(
    episode: Episode, score: float, *, expected: str | None = "analyze_churn", correct: bool | None = True
) -> Episode:
    return episode.with_label(
        Label(source="auto", score=score, expected_tool=expected, tool_correct=correct, evaluator="rubric")
    )


def queue(store: InMemoryEpisodeStore, **fields: object) -> list:  # type: ignore[type-arg]
    return review_queue(
        ReviewRequest(agent_id=AGENT, **fields),  # type: ignore[arg-type]
        episodes=store,
        agents=YamlAgentRegistry(),
        policy=ReviewPolicy(min_reward=0.7),
    )


def test_uncertain_and_disputed_episodes_come_first_and_say_why() -> None:
    sure = [
        auto(make_episode(f"sure{i}", query=f"Analyze churn for Q{i % 4 + 1} 2025"), 1.0) for i in range(30)
    ]
    near_line = auto(make_episode("near", query="Churn in Q2 2025 please"), 0.68)
    disputed = auto(
        make_episode(
            "disputed",
            query="Forecast sales for the next 6 months",
            tool="sales_report",
            arguments={"region": "all", "period": "last quarter"},
        ),
        0.9,
        expected="sales_forecast",
        correct=False,
    )
    no_intent = auto(
        make_episode("no-intent", query="Which clients are about to walk?"), 0.55, expected=None, correct=None
    )
    items = queue(InMemoryEpisodeStore([*sure, near_line, disputed, no_intent]), limit=3)
    assert {item.id for item in items} == {"near", "disputed", "no-intent"}
    by_id = {item.id: item for item in items}
    assert "the judge expected sales_forecast, the agent called sales_report" in by_id["disputed"].why
    assert "the judge accepts the answer although it calls the tool wrong" in by_id["disputed"].why
    assert any("near the accept line" in why for why in by_id["near"].why)
    assert any("no rubric intent matched" in why for why in by_id["no-intent"].why)
    assert all(item.priority > 0 for item in items)
    assert [item.priority for item in items] == sorted((item.priority for item in items), reverse=True)


def test_human_labeled_episodes_are_never_listed() -> None:
    store = InMemoryEpisodeStore([auto(make_episode(f"e{i}", query=f"churn {i}"), 0.7) for i in range(5)])
    store.save_label("e0", Label(source="human", score=0.9))
    store.save_label(
        "e1",
        Label(
            source="human",
            score=0.1,
            expected_tool="sales_report",
            expected_arguments={"region": "all", "period": "Q1 2025"},
        ),
    )
    ids = [item.id for item in queue(store, limit=10)]
    assert sorted(ids) == ["e2", "e3", "e4"]


def test_filter_by_tool_and_refuse_an_unknown_tool() -> None:
    store = InMemoryEpisodeStore(
        [
            auto(make_episode("c", query="churn"), 0.7),
            auto(
                make_episode(
                    "s", query="sales", tool="sales_report", arguments={"region": "all", "period": "Q1"}
                ),
                0.7,
                expected="sales_report",
            ),
        ]
    )
    assert [item.id for item in queue(store, tool="sales_report")] == ["s"]
    with pytest.raises(InvalidInput, match="not one of"):
        queue(store, tool="send_email")


def test_one_page_spreads_over_tools_instead_of_repeating_one_mistake() -> None:
    same = [
        auto(make_episode(f"same{i}", query=f"Analyze churn for Q4 2025 take {i}"), 0.7) for i in range(20)
    ]
    other = [
        auto(
            make_episode(
                f"seg{i}",
                query=f"segments at risk {i}",
                tool="customer_segments",
                arguments={"risk_level": "high"},
            ),
            0.75,
            expected="customer_segments",
        )
        for i in range(5)
    ]
    items = queue(InMemoryEpisodeStore([*same, *other]), limit=6)
    tools = {item.tool for item in items}
    assert tools == {"analyze_churn", "customer_segments"}

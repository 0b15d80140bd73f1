"""An episode's call joins the golden set in one step (the console's "add to the golden set")."""

from __future__ import annotations

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.errors import InvalidInput, NotFound
from lightning.domain.golden import golden_id
from lightning.services.golden import golden_from_episode
from lightning.services.labeling import HumanLabel, label_episode
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode
from tests.fakes.golden import InMemoryGoldenStore

AGENT = "autonomous-agent"
QUERY = "Forecast sales for the next 6 months"


@pytest.fixture
def store() -> InMemoryEpisodeStore:
    wrong = make_episode(
        "e1", query=QUERY, tool="sales_report", arguments={"region": "all", "period": "last quarter"}
    )
    return InMemoryEpisodeStore([wrong, make_episode("e2")])


def add(store: InMemoryEpisodeStore, golden: InMemoryGoldenStore, episode_id: str = "e1", **call: object):  # type: ignore[no-untyped-def]
    return golden_from_episode(
        episode_id, episodes=store, agents=YamlAgentRegistry(), golden=golden, created_by="ana", **call
    )


def test_a_given_call_is_checked_and_stored_as_a_correction(store: InMemoryEpisodeStore) -> None:
    golden = InMemoryGoldenStore()
    example = add(store, golden, expected_tool="sales_forecast", expected_arguments={"horizon_months": 6})
    assert example.id == golden_id(AGENT, QUERY)
    assert (example.expected_tool, example.expected_arguments) == ("sales_forecast", {"horizon_months": 6})
    assert (example.source, example.episode_id, example.created_by) == ("correction", "e1", "ana")
    assert [e.id for e in golden.list(AGENT)] == [example.id]
    assert not store.get("e1").human_labeled  # the golden set only: no label is written


def test_the_agents_own_tool_keeps_its_arguments_and_is_a_confirmation(store: InMemoryEpisodeStore) -> None:
    golden = InMemoryGoldenStore()
    example = add(store, golden, "e2", expected_tool="analyze_churn")
    assert (example.expected_arguments, example.source) == ({"period": "Q4 2025"}, "confirmation")


def test_without_a_call_it_takes_the_one_a_persons_label_names(store: InMemoryEpisodeStore) -> None:
    golden = InMemoryGoldenStore()
    with pytest.raises(InvalidInput, match="label the episode first"):
        add(store, golden)
    label_episode(
        HumanLabel(episode_id="e1", reward=0.1, labeled_by="bo"), episodes=store, agents=YamlAgentRegistry()
    )
    with pytest.raises(InvalidInput, match="no right call"):
        add(store, golden)  # a rejection names no right call
    label_episode(
        HumanLabel(
            episode_id="e1",
            reward=0.0,
            labeled_by="bo",
            expected_tool="sales_forecast",
            expected_arguments={"horizon_months": 6},
        ),
        episodes=store,
        agents=YamlAgentRegistry(),
    )
    example = add(store, golden)
    assert (example.expected_tool, example.source) == ("sales_forecast", "correction")


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ({"expected_tool": "send_email"}, "not one of autonomous-agent's tools"),
        ({"expected_tool": "sales_forecast"}, "horizon_months is required"),
        ({"expected_tool": "sales_forecast", "expected_arguments": {"horizon_months": 30}}, "must be <= 24"),
    ],
)
def test_a_call_the_agent_cannot_make_stores_nothing(
    store: InMemoryEpisodeStore, call: dict[str, object], says: str
) -> None:
    golden = InMemoryGoldenStore()
    with pytest.raises(InvalidInput, match=says):
        add(store, golden, **call)
    assert golden.count(AGENT) == 0


def test_unknown_episode(store: InMemoryEpisodeStore) -> None:
    with pytest.raises(NotFound):
        add(store, InMemoryGoldenStore(), "nope", expected_tool="sales_forecast")

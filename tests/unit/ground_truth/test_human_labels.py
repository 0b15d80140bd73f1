"""Human corrections: validated against the agent's tools, kept in the history, joined to the golden set."""

from __future__ import annotations

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.episode import Label
from lightning.domain.errors import Conflict, InvalidInput
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
    right = make_episode("e2", query="Analyze customer churn for Q4 2025")
    return InMemoryEpisodeStore([wrong, right])


def label(store: InMemoryEpisodeStore, golden: InMemoryGoldenStore | None = None, **fields: object):  # type: ignore[no-untyped-def]
    fields.setdefault("episode_id", "e1")
    fields.setdefault("reward", 0.2)
    fields.setdefault("labeled_by", "alice")
    return label_episode(HumanLabel(**fields), episodes=store, agents=YamlAgentRegistry(), golden=golden)


def test_a_correction_is_stored_in_the_history_and_joins_the_golden_set(store: InMemoryEpisodeStore) -> None:
    golden = InMemoryGoldenStore()
    outcome = label(
        store,
        golden,
        reason="asks for a forecast",
        expected_tool="sales_forecast",
        expected_arguments='{"horizon_months": 6}',
    )
    assert outcome.kind == "correction"
    episode = store.get("e1")
    assert episode.corrected
    assert episode.training_call() == ("sales_forecast", {"horizon_months": 6})
    assert episode.label is not None
    assert episode.label.source == "human"
    [example] = golden.list(AGENT)
    assert (example.query, example.expected_tool, example.expected_arguments) == (
        QUERY,
        "sales_forecast",
        {"horizon_months": 6},
    )
    assert (example.source, example.episode_id, example.created_by) == ("correction", "e1", "alice")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expected_tool": "send_email", "expected_arguments": "{}"}, "not one of autonomous-agent's tools"),
        (
            {"expected_tool": "sales_forecast", "expected_arguments": '{"horizon_months": 99}'},
            "must be <= 24",
        ),
        (
            {"expected_tool": "sales_forecast", "expected_arguments": '{"months": 6}'},
            "horizon_months is required",
        ),
        ({"expected_tool": "sales_forecast", "expected_arguments": "[6]"}, "must be a JSON object"),
        ({"expected_tool": "sales_forecast", "expected_arguments": "{horizon: 6"}, "is not JSON"),
        ({"expected_tool": "sales_forecast"}, "--expected-arguments is needed"),
        (
            {"expected_tool": "sales_report", "expected_arguments": '{"region": "western", "period": "Q1"}'},
            "one of",
        ),
        ({"reward": "1.5"}, "between 0 and 1"),
    ],
)
def test_bad_corrections_store_nothing(
    store: InMemoryEpisodeStore, fields: dict[str, object], message: str
) -> None:
    golden = InMemoryGoldenStore()
    with pytest.raises(InvalidInput, match=message):
        label(store, golden, **fields)
    assert store.get("e1").labels == []
    assert golden.list(AGENT) == []


def test_a_stale_etag_is_a_conflict_and_stores_nothing(store: InMemoryEpisodeStore) -> None:
    seen = store.get("e1").etag
    store.save_label("e1", Label(source="auto", score=0.9, reason="judge"))
    with pytest.raises(Conflict):
        label(store, if_match=seen, expected_tool="sales_forecast", expected_arguments={"horizon_months": 6})
    assert [lab.source for lab in store.get("e1").labels] == ["auto"]


def test_an_auto_label_after_a_person_never_displaces_it(store: InMemoryEpisodeStore) -> None:
    label(store, expected_tool="sales_forecast", expected_arguments={"horizon_months": 6})
    store.save_label("e1", Label(source="auto", score=0.95, reason="judge again"))
    episode = store.get("e1")
    assert [lab.source for lab in episode.labels] == ["human", "auto"]
    assert episode.label is not None
    assert episode.label.source == "human"
    assert episode.reward == 0.2


def test_confirmation_joins_the_golden_set_and_a_later_rejection_takes_it_back(
    store: InMemoryEpisodeStore,
) -> None:
    golden = InMemoryGoldenStore()
    assert label(store, golden, episode_id="e2", reward=0.95).kind == "confirmation"
    [example] = golden.list(AGENT)
    assert (example.expected_tool, example.expected_arguments, example.source) == (
        "analyze_churn",
        {"period": "Q4 2025"},
        "confirmation",
    )
    assert label(store, golden, episode_id="e2", reward=0.1, reason="on second thought").kind == "rejection"
    assert golden.list(AGENT) == []
    assert [lab.score for lab in store.get("e2").labels] == [0.95, 0.1]


def test_naming_the_agents_own_tool_without_arguments_confirms_its_call(store: InMemoryEpisodeStore) -> None:
    outcome = label(store, episode_id="e2", reward=0.5, expected_tool="analyze_churn")
    assert outcome.kind == "confirmation"
    assert store.get("e2").training_call() == ("analyze_churn", {"period": "Q4 2025"})

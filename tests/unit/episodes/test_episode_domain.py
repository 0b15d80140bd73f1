"""Domain rules of episodes and rewards."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from lightning.domain.episode import Episode, Label, check_reward, format_timestamp, parse_reward
from lightning.domain.errors import InvalidInput
from lightning.ports.evaluator import Evaluation
from tests.fakes.episodes import make_episode


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0])
def test_rewards_in_range_are_accepted(value: float) -> None:
    assert check_reward(value) == float(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (-0.01, "between 0 and 1"),
        (1.0001, "between 0 and 1"),
        (True, "not a boolean"),
    ],
)
def test_bad_rewards_are_refused_with_a_clear_message(value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_reward(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "must be a number"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("1.5", "between 0 and 1"),
        ("", "number"),
    ],
)
def test_parse_reward_turns_user_input_into_invalid_input(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        parse_reward(text)
    assert err.value.field == "reward"


def test_parse_reward_accepts_numbers_as_text() -> None:
    assert parse_reward("0.9") == 0.9
    assert parse_reward(" 1 ") == 1.0


@pytest.mark.parametrize("reward", [math.nan, 2.0, -1.0, True])
def test_episode_and_label_refuse_bad_rewards(reward: float) -> None:
    with pytest.raises(ValidationError):
        make_episode(reward=reward)
    with pytest.raises(ValidationError):
        Label(source="human", score=reward)
    with pytest.raises(ValidationError):
        Evaluation(score=reward, reason="", evaluator="x", evaluator_version="1")


def test_episode_matches_the_workshop_shape() -> None:
    doc = {
        "id": "episode-abc123",
        "agent_id": "autonomous-agent",
        "timestamp": "2026-02-07T10:30:00Z",
        "state": {"query": "Analyze customer churn for Q4 2025", "context": {"user": "analyst@contoso.com"}},
        "action": {"tool": "analyze_churn", "arguments": {"period": "Q4 2025"}},
        "result": {"churn_rate": 0.12, "at_risk_customers": 450},
        "reward": None,
        "labeled": False,
    }
    episode = Episode.model_validate(doc)
    out = episode.to_document()
    assert {k: out[k] for k in doc} == doc
    assert "etag" not in out


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a?b", "a#b", ""])
def test_ids_that_cosmos_cannot_store_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        make_episode(bad)


def test_timestamps_are_utc_with_microseconds_kept() -> None:
    local = datetime(2026, 2, 7, 11, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    episode = make_episode(timestamp=local)
    assert episode.timestamp == datetime(2026, 2, 7, 10, 30, 0, 5, tzinfo=UTC)
    assert format_timestamp(episode.timestamp) == "2026-02-07T10:30:00.000005Z"
    naive = make_episode(timestamp=datetime(2026, 2, 7, 10, 30))
    assert naive.timestamp.tzinfo is UTC


def test_with_label_sets_reward_and_labeled() -> None:
    labeled = make_episode().with_label(Label(source="human", score=0.9, reason="good", labeled_by="alice"))
    assert (labeled.reward, labeled.labeled, labeled.human_labeled) == (0.9, True, True)
    assert not make_episode().human_labeled

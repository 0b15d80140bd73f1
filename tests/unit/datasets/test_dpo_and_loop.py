"""DPO pairs are real pairs; the loop step builds when ready and queues StartFineTune once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lightning.domain.finetune_format import normalize_query, validate_dpo_example
from lightning.domain.messages import FINE_TUNE_JOBS, StartFineTune
from lightning.services.datasets import DatasetPolicy, build_datasets_when_ready, start_message_id
from tests.fakes.datasets import labeled_episode
from tests.fakes.queue import InMemoryQueue
from tests.unit.datasets.conftest import Ports
from tests.unit.datasets.openai_checker import check_dpo_lines

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


def pairs_of(n: int) -> list[Any]:
    """For each of n requests: a good answer (0.9), a bad one with another tool (0.2), a middling one."""
    episodes = []
    for i in range(n):
        query = f"Analyze customer churn for region {i}"
        episodes.append(
            labeled_episode(
                3 * i, reward=0.9, tool="analyze_churn", query=query, arguments={"period": f"Q{i}"}
            )
        )
        episodes.append(
            labeled_episode(
                3 * i + 1,
                reward=0.2,
                tool="sales_forecast",
                query=query.upper() + "?",
                arguments={"horizon_months": 3},
            )
        )
        episodes.append(
            labeled_episode(
                3 * i + 2, reward=0.6, tool="analyze_churn", query=query, arguments={"period": "all"}
            )
        )
    return episodes


def test_dpo_pairs_share_the_request_and_prefer_the_higher_reward(ports: Ports) -> None:
    episodes = pairs_of(15)
    episodes.append(labeled_episode(999, reward=0.95, query="A lonely request without a counterpart"))
    ports.add(episodes)
    by_id = {e.id: e for e in episodes}

    manifest = ports.build(output_format="dpo", validation_split=0).manifest

    lines = ports.lines(manifest.files[0].uri)
    assert len(lines) == 15
    assert check_dpo_lines(lines) == {}
    ids = manifest.episode_ids
    for n, line in enumerate(lines):
        example = json.loads(line)
        assert validate_dpo_example(example) == []
        good, bad = by_id[ids[2 * n]], by_id[ids[2 * n + 1]]
        assert normalize_query(good.state.query) == normalize_query(bad.state.query)
        assert good.reward is not None
        assert bad.reward is not None
        assert good.reward >= 0.7
        assert good.reward - bad.reward >= 0.2
        assert example["input"]["messages"][-1] == {"role": "user", "content": good.state.query}
        preferred = example["preferred_output"][0]["tool_calls"][0]["function"]
        rejected = example["non_preferred_output"][0]["tool_calls"][0]["function"]
        assert preferred["name"] == good.action.tool == "analyze_churn"
        assert rejected["name"] == bad.action.tool == "sales_forecast"
        assert bad.reward == 0.2  # the worst answer, not the middling one
    assert manifest.dropped["no_preference_pair"] == 1
    assert manifest.format == "dpo"


def test_dpo_needs_ten_pairs(ports: Ports) -> None:
    ports.add(pairs_of(5))
    with pytest.raises(Exception, match="only 5 preference pairs"):
        ports.build(output_format="dpo")


# --- loop step ----------------------------------------------------------------------------------


def run_step(ports: Ports, queue: InMemoryQueue, now: datetime, **policy: Any) -> Any:
    ports.queue = queue
    return build_datasets_when_ready(
        ports.bundle(),
        DatasetPolicy(**{"min_episodes": 50, "min_hours_between": 24, **policy}),
        now=now,
    )


def test_loop_builds_when_enough_new_good_episodes_and_queues_once(ports: Ports) -> None:
    queue = InMemoryQueue()
    ports.add([labeled_episode(i, reward=0.9) for i in range(40)])
    now = T0 + timedelta(days=1)

    report = run_step(ports, queue, now)
    assert report.built == []
    assert report.skipped["autonomous-agent"] == "40 new good episodes (< 50)"
    assert "approval-agent" in report.skipped

    ports.add([labeled_episode(i, reward=0.9) for i in range(40, 60)])
    report = run_step(ports, queue, now)
    (built,) = report.built
    assert built.name == "autonomous-agent-20260208T100000Z"
    assert built.episode_count == 60
    assert built.filters["trigger"] == "loop"
    (message,) = queue.pending(FINE_TUNE_JOBS)
    assert message[0] == start_message_id(built.name)
    assert StartFineTune.model_validate(message[1]) == StartFineTune(
        agent_id="autonomous-agent", dataset_name=built.name
    )

    # A minute later: too soon to build again; the re-send is de-duplicated by message id.
    report = run_step(ports, queue, now + timedelta(minutes=1))
    assert report.built == []
    assert report.queued == [built.name]
    assert len(queue.pending(FINE_TUNE_JOBS)) == 1


def test_loop_waits_for_min_hours_and_counts_only_newer_episodes(ports: Ports) -> None:
    queue = InMemoryQueue()
    ports.add([labeled_episode(i, reward=0.9, timestamp=T0 + timedelta(minutes=i)) for i in range(60)])
    first_tick = T0 + timedelta(hours=2)
    (first,) = run_step(ports, queue, first_tick).built

    later = [
        labeled_episode(100 + i, reward=0.9, timestamp=first_tick + timedelta(minutes=i)) for i in range(55)
    ]
    ports.add(later)
    report = run_step(ports, queue, first_tick + timedelta(hours=23))
    assert report.built == []
    assert "h old (< 24 h)" in report.skipped["autonomous-agent"]

    report = run_step(ports, queue, first_tick + timedelta(hours=25))
    (second,) = report.built
    assert second.episode_count == 115  # a full dataset of every good episode, not just the new ones
    assert [m[0] for m in queue.pending(FINE_TUNE_JOBS)] == [
        start_message_id(first.name),
        start_message_id(second.name),
    ]


def test_loop_reports_an_agent_it_cannot_build_for_and_goes_on(ports: Ports) -> None:
    queue = InMemoryQueue()
    # 60 good episodes that are all the same request: de-duplicated to 1 example, too few to train.
    ports.add(
        [
            labeled_episode(i, reward=0.9, query="same", tool="analyze_churn", arguments={"period": "Q1"})
            for i in range(60)
        ]
    )
    ports.add(
        [
            labeled_episode(1000 + i, agent_id="approval-agent", reward=0.9, tool="analyze_churn")
            for i in range(60)
        ]
    )
    report = run_step(ports, queue, T0 + timedelta(days=1))
    assert "only 1 usable examples" in report.skipped["autonomous-agent"]
    assert [m.agent_id for m in report.built] == ["approval-agent"]
    assert len(queue.pending(FINE_TUNE_JOBS)) == 1

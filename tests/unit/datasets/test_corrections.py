"""Corrections become training data; no example contradicts a person; human-only builds."""

from __future__ import annotations

import json

from lightning.domain.episode import Label
from lightning.services.datasets import info_block
from tests.fakes.datasets import labeled_episode
from tests.unit.datasets.conftest import Ports


def calls(ports: Ports, manifest) -> dict[str, tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """Each example's user request → the tool call it teaches."""
    taught: dict[str, tuple[str, dict]] = {}  # type: ignore[type-arg]
    for file in manifest.files:
        for line in ports.lines(file.uri):
            messages = json.loads(line)["messages"]
            user = next(m["content"] for m in messages if m["role"] == "user")
            call = next(m for m in messages if m.get("tool_calls"))["tool_calls"][0]["function"]
            taught[user] = (call["name"], json.loads(call["arguments"]))
    return taught


def human(score: float, tool: str | None = None, arguments: dict | None = None) -> Label:  # type: ignore[type-arg]
    return Label(
        source="human", score=score, expected_tool=tool, expected_arguments=arguments, labeled_by="alice"
    )


def test_a_corrected_episode_teaches_the_persons_call_never_the_wrong_one(ports: Ports) -> None:
    ports.add([labeled_episode(i, reward=0.9) for i in range(20)])
    wrong = labeled_episode(
        100, reward=0.9, tool="sales_report", query="Forecast sales for the next 6 months"
    )
    ports.add([wrong])
    ports.episodes.save_label(wrong.id, human(0.2, "sales_forecast", {"horizon_months": 6}))

    manifest = ports.build(validation_split=0.0).manifest

    assert calls(ports, manifest)["Forecast sales for the next 6 months"] == (
        "sales_forecast",
        {"horizon_months": 6},
    )
    assert manifest.corrected_examples == 1
    assert wrong.id in manifest.episode_ids
    assert ("Corrected Examples", "1") in info_block(manifest)


def test_a_person_wins_over_auto_labels_on_the_same_request(ports: Ports) -> None:
    base = [labeled_episode(i, reward=0.9) for i in range(20)]
    query = "Forecast sales for the next 6 months"
    judged_twins = [
        labeled_episode(200 + i, reward=0.95, tool="sales_report", query=query) for i in range(3)
    ]  # the judge liked the wrong call on three copies of the request
    corrected = labeled_episode(300, reward=0.9, tool="sales_report", query=query)
    ports.add([*base, *judged_twins, corrected])
    ports.episodes.save_label(corrected.id, human(0.1, "sales_forecast", {"horizon_months": 6}))

    manifest = ports.build(validation_split=0.0).manifest

    assert calls(ports, manifest)[query] == ("sales_forecast", {"horizon_months": 6})
    assert not {e.id for e in judged_twins} & set(manifest.episode_ids)
    assert manifest.dropped["human_label_wins"] == 3


def test_a_rejected_call_is_not_taught_by_its_auto_labeled_twins(ports: Ports) -> None:
    ports.add([labeled_episode(i, reward=0.9) for i in range(20)])
    query = "Which products sold best?"
    call = {"n": 5, "metric": "units"}
    rejected = labeled_episode(400, reward=0.9, tool="top_products", query=query, arguments=call)
    twin = labeled_episode(401, reward=0.9, tool="top_products", query=query, arguments=call)
    other = labeled_episode(
        402, reward=0.9, tool="top_products", query=query, arguments={"n": 5, "metric": "revenue"}
    )
    ports.add([rejected, twin, other])
    ports.episodes.save_label(rejected.id, human(0.2))

    manifest = ports.build(validation_split=0.0).manifest

    assert calls(ports, manifest)[query] == (
        "top_products",
        {"n": 5, "metric": "revenue"},
    )  # another call: kept
    assert not {rejected.id, twin.id} & set(manifest.episode_ids)
    assert manifest.dropped["rejected_by_human"] == 2


def test_confirmed_low_reward_episodes_count_and_human_only_builds_use_people_alone(ports: Ports) -> None:
    episodes = [labeled_episode(i, reward=0.9) for i in range(30)]
    ports.add(episodes)
    for episode in episodes[:12]:
        ports.episodes.save_label(episode.id, human(0.95))

    everything = ports.build(name="all", validation_split=0.0).manifest
    people = ports.build(name="people", validation_split=0.0, human_only=True).manifest

    assert everything.confirmed_examples == 12
    assert len(everything.episode_ids) == 30
    assert sorted(people.episode_ids) == sorted(e.id for e in episodes[:12])
    assert people.filters["human_only"] is True

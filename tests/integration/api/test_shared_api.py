"""One API, two hosts: every case runs against the Function App's handlers and the console over HTTP.

Bad input is a 400 with a JSON error, unknown ids 404, a stale label 409 with the newer episode —
never a 500 — and the same body on both hosts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lightning.bootstrap import calibration_policy
from lightning.services.calibration import judge_report
from tests.integration.api.data import AGENT, DEFAULTS, TOOLS
from tests.integration.api.hosts import Host


def _wrong_tool(host: Host, episode_id: str) -> tuple[str, dict[str, Any]]:
    """A call other than the episode's: the next tool, with its defaults."""
    episode = host.container.episodes.get(episode_id)
    tool = TOOLS[(TOOLS.index(episode.action.tool or TOOLS[0]) + 1) % len(TOOLS)]
    return tool, dict(DEFAULTS[tool])


# --- episodes -------------------------------------------------------------------------------------
def test_list_episodes(host: Host) -> None:
    answer = host.call("GET", "episodes", params={"agent_id": AGENT, "limit": "3"})
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.body["count"] == 3
    assert {"id", "state", "action", "labels", "label"} <= set(answer.body["episodes"][0])


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "many"}, {"agnet_id": AGENT}])
def test_list_episodes_bad_query_is_400(host: Host, params: dict[str, str]) -> None:
    answer = host.call("GET", "episodes", params=params)
    assert answer.status == 400
    assert answer.error["type"] == "InvalidInput"


def test_get_episode_has_its_etag_and_history(host: Host) -> None:
    answer = host.call("GET", "episodes/api-001")
    assert answer.status == 200
    assert answer.body["id"] == "api-001"
    assert answer.headers["etag"] == f'"{host.container.episodes.get("api-001").etag}"'
    assert [label["source"] for label in answer.body["labels"]] == ["auto"]
    missing = host.call("GET", "episodes/nope")
    assert missing.status == 404
    assert (missing.error["type"], missing.error["id"]) == ("NotFound", "nope")


# --- labels ---------------------------------------------------------------------------------------
def test_a_correction_is_stored_as_the_reviewers_and_joins_the_golden_set(host: Host) -> None:
    tool, arguments = _wrong_tool(host, "api-004")
    etag = host.call("GET", "episodes/api-004").headers["etag"]
    answer = host.call(
        "POST",
        "episodes/api-004/label",
        json_body={
            "reward": 0.1,
            "reason": "wrong tool",
            "expected_tool": tool,
            "expected_arguments": arguments,
        },
        headers={"If-Match": etag},
        reviewer="ana@contoso.com",
    )
    assert answer.status == 200, answer.body
    assert answer.body["kind"] == "correction"
    assert answer.body["golden_id"]
    assert answer.headers["etag"] != etag
    stored = host.container.episodes.get("api-004")
    assert stored.corrected
    assert stored.human_label is not None
    assert (stored.human_label.labeled_by, stored.human_label.expected_tool) == ("ana@contoso.com", tool)
    assert [label.source for label in stored.labels] == ["auto", "human"]  # the auto label is kept
    assert host.container.golden.get(AGENT, answer.body["golden_id"]).expected_tool == tool


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reward": 1.5}, None),
        ({"reward": "high"}, None),
        ({"reason": "no reward"}, None),
        ({"reward": 0.5, "extra": 1}, None),
        ({"reward": 0.2, "expected_tool": "send_email"}, "expected_tool"),
        (
            {
                "reward": 0.2,
                "expected_tool": "top_products",
                "expected_arguments": {"n": 0, "metric": "revenue"},
            },
            "expected_arguments",
        ),
        (
            {"reward": 0.2, "expected_tool": "top_products", "expected_arguments": {"n": 5}},
            "expected_arguments",
        ),
    ],
)
def test_a_bad_label_is_400_and_stores_nothing(host: Host, body: dict[str, Any], field: str | None) -> None:
    answer = host.call("POST", "episodes/api-002/label", json_body=body)
    assert answer.status == 400, answer.body
    assert answer.error["type"] == "InvalidInput"
    if field is not None:
        assert answer.error["field"] == field
    assert not host.container.episodes.get("api-002").human_labeled
    assert host.container.golden.count(AGENT) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[0.5]"])
def test_a_label_body_that_is_not_a_json_object_is_400(host: Host, raw: bytes) -> None:
    answer = host.call("POST", "episodes/api-002/label", raw=raw)
    assert answer.status == 400
    assert answer.error["type"] == "InvalidInput"


def test_a_stale_etag_is_409_with_the_newer_label_and_overwrites_nothing(host: Host) -> None:
    seen = host.call("GET", "episodes/api-005").headers["etag"]
    first = host.call(
        "POST", "episodes/api-005/label", json_body={"reward": 0.9, "reason": "fine"}, reviewer="bo"
    )
    assert first.status == 200
    late = host.call(
        "POST",
        "episodes/api-005/label",
        json_body={"reward": 0.1},
        headers={"If-Match": seen},
        reviewer="ana@contoso.com",
    )
    assert late.status == 409
    assert late.error["type"] == "Conflict"
    assert late.error["current"]["label"]["labeled_by"] == "bo"
    assert late.error["current"]["label"]["score"] == 0.9
    stored = host.container.episodes.get("api-005")
    assert stored.reward == 0.9
    assert [label.labeled_by for label in stored.labels if label.source == "human"] == ["bo"]


def test_unknown_episode_is_404(host: Host) -> None:
    answer = host.call("POST", "episodes/missing-1/label", json_body={"reward": 0.5})
    assert answer.status == 404
    assert answer.error["type"] == "NotFound"


# --- golden set ------------------------------------------------------------------------------------
def test_an_episodes_call_joins_the_golden_set_in_one_call(host: Host) -> None:
    tool, arguments = _wrong_tool(host, "api-007")
    answer = host.call(
        "POST",
        "episodes/api-007/golden",
        json_body={"expected_tool": tool, "expected_arguments": arguments},
        reviewer="bo",
    )
    assert answer.status == 200, answer.body
    assert (answer.body["expected_tool"], answer.body["source"], answer.body["created_by"]) == (
        tool,
        "correction",
        "bo",
    )
    assert answer.body["episode_id"] == "api-007"
    assert answer.body["total"] == 1
    assert host.container.golden.get(AGENT, answer.body["id"]).expected_arguments == arguments
    # a person's confirmation names the call by itself
    host.call("POST", "episodes/api-008/label", json_body={"reward": 1.0, "reason": "right"})
    confirmed = host.call("POST", "episodes/api-008/golden")
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["source"] == "confirmation"


@pytest.mark.parametrize(
    "body",
    [
        None,  # no call given and nobody labeled it
        {"expected_tool": "send_email"},
        {"expected_tool": "sales_forecast", "expected_arguments": {"horizon_months": 99}},
    ],
)
def test_a_golden_call_that_is_not_one_the_agent_can_make_is_400(host: Host, body: Any) -> None:
    answer = host.call("POST", "episodes/api-010/golden", json_body=body)
    assert answer.status == 400, answer.body
    assert host.container.golden.count(AGENT) == 0


def test_import_and_list_golden(host: Host) -> None:
    lines = [
        json.dumps(
            {
                "query": "Forecast sales for the next 6 months",
                "expected_tool": "sales_forecast",
                "expected_arguments": {"horizon_months": 6},
            }
        ),
        '{"query": "bad", "expected_tool": "send_email"}',
        "not json",
    ]
    answer = host.call(
        "POST", "golden", params={"agent_id": AGENT}, raw="\n".join(lines).encode(), reviewer="bo"
    )
    assert answer.status == 200, answer.body
    assert (answer.body["stored"], answer.body["total"]) == (1, 1)
    assert [bad["line"] for bad in answer.body["bad"]] == [2, 3]
    listed = host.call("GET", "golden", params={"agent_id": AGENT})
    assert listed.status == 200
    assert listed.body["count"] == 1
    assert listed.body["examples"][0]["created_by"] == "bo"
    every_line_bad = host.call("POST", "golden", params={"agent_id": AGENT}, raw=b'{"query": "x"}\n')
    assert every_line_bad.status == 400
    assert host.call("GET", "golden", params={"agent_id": "nobody"}).status == 404


# --- review queue, judge report, status, agents -------------------------------------------------------
def test_review_queue_lists_why_and_never_a_reviewed_episode(host: Host) -> None:
    answer = host.call("GET", "review-queue", params={"agent_id": AGENT, "limit": "10"})
    assert answer.status == 200
    items = answer.body["items"]
    assert len(items) == 10
    assert all(item["why"] and item["id"] for item in items)
    first = items[0]["id"]
    host.call("POST", f"episodes/{first}/label", json_body={"reward": 1.0})
    again = host.call("GET", "review-queue", params={"agent_id": AGENT, "limit": "40"})
    assert first not in {item["id"] for item in again.body["items"]}
    only = host.call("GET", "review-queue", params={"agent_id": AGENT, "tool": "top_products"})
    assert {item["tool"] for item in only.body["items"]} <= {"top_products"}
    assert host.call("GET", "review-queue", params={"agent_id": AGENT, "tool": "send_email"}).status == 400
    assert host.call("GET", "review-queue", params={"agent_id": "nobody"}).status == 404


def test_judge_report_is_the_services(host: Host) -> None:
    for episode_id in ("api-003", "api-004", "api-006"):
        tool, arguments = _wrong_tool(host, episode_id)
        host.call(
            "POST",
            f"episodes/{episode_id}/label",
            json_body={"reward": 0.0, "expected_tool": tool, "expected_arguments": arguments},
        )
    host.call("POST", "episodes/api-001/label", json_body={"reward": 1.0})
    answer = host.call("GET", "judge-report", params={"agent_id": AGENT})
    assert answer.status == 200
    c = host.container
    expected = judge_report(
        AGENT, episodes=c.episodes, golden=c.golden, policy=calibration_policy(c.settings)
    )
    assert answer.body == expected.model_dump(mode="json")
    assert answer.body["compared"] == 4
    assert host.call("GET", "judge-report", params={"agent_id": "nobody"}).status == 404


def test_status(host: Host) -> None:
    answer = host.call("GET", "status", params={"agent_id": AGENT})
    assert answer.status == 200
    assert answer.body["episodes"] == 40
    assert answer.body["judge"]["trust"]["trusted"] is True
    assert answer.body["active_version"] is None
    assert host.call("GET", "status", params={}).status == 400


def test_agents_give_the_page_its_tools_and_schemas(host: Host) -> None:
    answer = host.call("GET", "agents")
    assert answer.status == 200
    assert answer.body["min_reward"] == 0.7
    agent = next(a for a in answer.body["agents"] if a["id"] == AGENT)
    tools = {tool["name"]: tool for tool in agent["tools"]}
    assert set(tools) == set(TOOLS)
    assert tools["top_products"]["parameters"]["required"] == ["n", "metric"]
    assert tools["sales_report"]["defaults"] == {"region": "all", "period": "last quarter"}


def test_whoami_is_the_name_labels_record(host: Host) -> None:
    assert host.call("GET", "whoami", reviewer="bo").body == {"caller": "bo"}


def test_label_batch_and_unknown_dataset(host: Host) -> None:
    answer = host.call(
        "POST",
        "label-batch",
        json_body={"agent_id": AGENT, "evaluator": "rubric", "relabel": True, "limit": 5},
    )
    assert answer.status == 200, answer.body
    assert answer.body["labeled"] == 5
    assert host.call("POST", "label-batch", json_body={"agent_id": AGENT, "evaluator": "vibes"}).status == 400
    missing = host.call("GET", "datasets/nope")
    assert missing.status == 404
    assert missing.error["type"] == "NotFound"

"""The HTTP endpoints, called as the host calls them (real ``func.HttpRequest``), on SQLite.

Bad input is a 400 with a JSON error, unknown ids 404, a stale label 409 — never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest

from lightning.bootstrap import Container
from lightning.domain.dataset import DatasetManifest, RewardStats
from tests.integration.functions.episodes_factory import AGENT, captured
from tests.integration.functions.harness import call_http, http_request


@pytest.fixture
def seeded(app_container: Container) -> Container:
    app_container.episodes.add(captured(5) + captured(2, prefix="other", agent_id="approval-agent"))
    return app_container


def _error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


# --- episodes -------------------------------------------------------------------------------------
def test_list_episodes_filters_and_limits(seeded: Container) -> None:
    status, body, response = call_http(
        "list_episodes",
        http_request("GET", "episodes", params={"agent_id": AGENT, "limit": "3", "code": "function-key"}),
    )
    assert status == 200
    assert response.mimetype == "application/json"
    assert body["count"] == 3
    assert {e["agent_id"] for e in body["episodes"]} == {AGENT}
    assert {"id", "timestamp", "state", "action", "result", "reward", "labeled"} <= set(body["episodes"][0])

    seeded.episodes.save_label("fn-3-0", seeded_label())
    _, unlabeled, _ = call_http(
        "list_episodes", http_request("GET", "episodes", params={"agent_id": AGENT, "unlabeled_only": "true"})
    )
    assert unlabeled["count"] == 4
    _, everything, _ = call_http(
        "list_episodes", http_request("GET", "episodes", params={"unlabeled_only": ""})
    )
    assert everything["count"] == 6


def seeded_label() -> Any:
    from tests.integration.functions.episodes_factory import human_label

    return human_label(0.8)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "zero"},
        {"limit": "0"},
        {"limit": "100000"},
        {"unlabeled_only": "maybe"},
        {"unlabeled_only": "true", "labeled_only": "true"},
        {"agnet_id": AGENT},
    ],
)
def test_list_episodes_bad_query_is_400(seeded: Container, params: dict[str, str]) -> None:
    status, body, _ = call_http("list_episodes", http_request("GET", "episodes", params=params))
    assert status == 400
    assert _error(body)["type"] == "InvalidInput"


def test_get_episode_and_unknown_id(seeded: Container) -> None:
    status, body, response = call_http(
        "get_episode", http_request("GET", "episodes/fn-3-1", route_params={"episode_id": "fn-3-1"})
    )
    assert status == 200
    assert body["id"] == "fn-3-1"
    assert response.headers["ETag"] == f'"{seeded.episodes.get("fn-3-1").etag}"'
    status, body, _ = call_http(
        "get_episode", http_request("GET", "episodes/nope", route_params={"episode_id": "nope"})
    )
    assert status == 404
    assert _error(body)["type"] == "NotFound"
    assert _error(body)["id"] == "nope"


def _label(
    episode_id: str, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    return call_http(
        "label_episode",
        http_request(
            "POST",
            f"episodes/{episode_id}/label",
            route_params={"episode_id": episode_id},
            body=body,
            raw_body=raw,
            headers=headers,
        ),
    )


def test_label_episode_writes_a_human_label(seeded: Container) -> None:
    status, body, _ = _label(
        "fn-3-2",
        {"reward": 0.9, "reason": "Correct tool"},
        headers={"x-ms-client-principal-name": "ana@contoso.com"},
    )
    assert status == 200
    assert body["reward"] == 0.9
    assert body["labeled"] is True
    assert body["label"]["source"] == "human"
    assert body["label"]["labeled_by"] == "ana@contoso.com"
    assert seeded.episodes.get("fn-3-2").reward == 0.9


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        ({"reward": 1.5}, None),
        ({"reward": "high"}, None),
        ({"reward": None}, None),
        ({"reason": "no reward"}, None),
        ({"reward": 0.5, "extra": 1}, None),
        ({"reward": 0.5, "reason": "x" * 2001}, None),
        (None, b"{not json"),
        (None, b"[0.5]"),
        (None, b""),
    ],
)
def test_label_episode_bad_body_is_400(seeded: Container, body: Any, raw: bytes | None) -> None:
    status, answer, _ = _label("fn-3-2", body, raw)
    assert status == 400, answer
    assert _error(answer)["type"] == "InvalidInput"
    assert seeded.episodes.get("fn-3-2").labeled is False


def test_label_unknown_episode_is_404(seeded: Container) -> None:
    status, body, _ = _label("missing-1", {"reward": 0.5})
    assert status == 404
    assert _error(body)["type"] == "NotFound"


def test_label_with_a_stale_if_match_is_409(seeded: Container) -> None:
    read = seeded.episodes.get("fn-3-3")
    seeded.episodes.save_label("fn-3-3", seeded_label())  # someone else labeled it meanwhile
    status, body, _ = _label("fn-3-3", {"reward": 0.1}, headers={"If-Match": f'"{read.etag}"'})
    assert status == 409
    assert _error(body)["type"] == "Conflict"
    assert seeded.episodes.get("fn-3-3").reward == 0.8
    fresh = seeded.episodes.get("fn-3-3").etag
    status, _, _ = _label("fn-3-3", {"reward": 0.1}, headers={"If-Match": f'"{fresh}"'})
    assert status == 200


# --- label-batch ----------------------------------------------------------------------------------
def test_label_batch_labels_an_agents_episodes(seeded: Container) -> None:
    status, body, _ = call_http(
        "label_batch",
        http_request(
            "POST", "label-batch", body={"agent_id": AGENT, "evaluator": "rubric", "min_score": 0.7}
        ),
    )
    assert status == 200
    assert body["agent_id"] == AGENT
    assert body["labeled"] == 5
    assert body["min_score"] == 0.7
    assert seeded.episodes.get("other-3-0").labeled is False


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"agent_id": AGENT, "min_score": 2}, 400),
        ({"agent_id": AGENT, "evaluator": "vibes"}, 400),
        ({"agent_id": AGENT, "limit": 0}, 400),
        ({"agent_id": "no-such-agent"}, 404),
    ],
)
def test_label_batch_bad_input(seeded: Container, body: dict[str, Any], status: int) -> None:
    got, answer, _ = call_http("label_batch", http_request("POST", "label-batch", body=body))
    assert got == status, answer
    _error(answer)


# --- datasets, training, promotion ------------------------------------------------------------------
def test_dataset_info(app_container: Container) -> None:
    manifest = DatasetManifest(
        name="autonomous-agent-v1",
        agent_id=AGENT,
        episode_ids=["a", "b", "c"],
        content_sha256="f" * 64,
        reward=RewardStats(avg=0.82, min=0.7, max=0.98),
        token_count=45230,
    )
    app_container.datasets.put(manifest)
    status, body, _ = call_http(
        "dataset_info",
        http_request("GET", "datasets/autonomous-agent-v1", route_params={"name": "autonomous-agent-v1"}),
    )
    assert status == 200
    assert (body["name"], body["episodes"], body["token_count"]) == ("autonomous-agent-v1", 3, 45230)
    assert "episode_ids" not in body
    status, body, _ = call_http(
        "dataset_info", http_request("GET", "datasets/nope", route_params={"name": "nope"})
    )
    assert status == 404
    assert _error(body)["type"] == "NotFound"


def test_training_status_of_an_unknown_job_is_404(app_container: Container, use_model_server: Any) -> None:
    from lightning.config import get_settings
    from tests.integration.functions.harness import run_on

    with run_on(Container(get_settings())):
        status, body, _ = call_http(
            "training_status",
            http_request("GET", "training/ftjob-nope", route_params={"job_id": "ftjob-nope"}),
        )
    assert status == 404, body
    assert _error(body)["type"] == "NotFound"


@pytest.mark.parametrize(
    ("agent", "body", "status"),
    [
        (AGENT, {}, 400),
        (AGENT, {"model_name": ""}, 400),
        (AGENT, {"model_name": "ft:x", "mark_active": "sometimes"}, 400),
        ("no-such-agent", {"model_name": "ft:local-base:x:1"}, 404),
        (AGENT, {"model_name": "ft:local-base:never-trained:1"}, 400),
    ],
)
def test_promote_bad_input(app_container: Container, agent: str, body: dict[str, Any], status: int) -> None:
    got, answer, _ = call_http(
        "promote_model",
        http_request("POST", f"models/{agent}/promote", route_params={"agent_id": agent}, body=body),
    )
    assert got == status, answer
    _error(answer)
    assert app_container.models.list(AGENT) == []

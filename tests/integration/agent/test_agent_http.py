"""The agent over real HTTP (uvicorn) with the real local model server and the SQLite episode store."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from lightning.agent.queries import WORKSHOP_QUERIES, workshop_samples
from lightning.bootstrap import Container
from lightning.bootstrap_agent import build_agent
from lightning.capture import CapturePolicy, EpisodeCapture
from lightning.config import get_settings
from lightning.domain.episode import Episode
from lightning.domain.model import ModelVersion
from lightning.ports.episodes import EpisodeQuery
from tests.integration.agent.conftest import RunningAgent, run_agent


def workshop_body(query: str) -> dict[str, Any]:
    # Exactly what the workshop's PowerShell loop sends (ConvertTo-Json of the hashtable).
    return {
        "jsonrpc": "2.0",
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "method": "tools/call",
        "params": {"name": "analyze_query", "arguments": {"query": query}},
    }


def answer(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    parsed = json.loads(result["content"][0]["text"])
    parsed["_is_error"] = result["isError"]
    return parsed


def stored(running: RunningAgent) -> list[Episode]:
    assert running.agent.capture.flush()
    store = Container(running.settings).episodes
    return list(store.query(EpisodeQuery(agent_id="autonomous-agent", order="oldest")))


def test_workshop_requests_land_as_episodes_in_the_store(start_agent: Callable[..., RunningAgent]) -> None:
    running = start_agent(capture=True)
    answers = []
    for query in WORKSHOP_QUERIES:
        response = httpx.post(
            f"{running.url}/message",
            content=json.dumps(workshop_body(query), indent=4),  # PowerShell pretty-prints; no Accept header
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        answers.append(answer(response))
    assert all(a["model_version"] == "local-base" for a in answers)
    episodes = stored(running)
    assert [e.state.query for e in episodes] == list(WORKSHOP_QUERIES)
    for episode, given in zip(episodes, answers, strict=True):
        doc = episode.to_document()
        assert set(doc) >= {
            "id",
            "agent_id",
            "timestamp",
            "state",
            "action",
            "result",
            "reward",
            "labeled",
            "model_version",
            "latency_ms",
            "error",
            "response",
        }
        assert doc["id"] == given["episode_id"]
        assert doc["timestamp"].endswith("Z")
        assert doc["agent_id"] == "autonomous-agent"
        assert doc["model_version"] == "local-base"
        assert doc["reward"] is None
        assert doc["labeled"] is False
        assert doc["latency_ms"] > 0
        assert doc["action"]["tool"] == given["tool"]
        assert (doc["error"] is None) == (not given["_is_error"])
        if doc["error"] is None:
            assert doc["result"] == given["result"]
    # local-base is a weak zero-shot model, but the workshop's churn query is unmistakable.
    assert episodes[0].action.tool == "analyze_churn"
    assert episodes[0].action.arguments == {"period": "Q4 2025"}


def test_capture_off_stores_nothing(start_agent: Callable[..., RunningAgent]) -> None:
    running = start_agent(capture=False)
    given = answer(running.post(workshop_body(WORKSHOP_QUERIES[0])))
    assert given["episode_id"] is None
    assert given["tool"] == "analyze_churn"
    assert not running.agent.capture.enabled
    assert not list(Container(running.settings).episodes.query(EpisodeQuery()))


class OutageStore:
    """The real SQLite store behind a switch: raises while down, like an unreachable database."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.sent: list[str] = []

    def add(self, episodes: Sequence[Episode]) -> int:
        if self.down:
            raise ConnectionError("episode store unreachable")
        self.sent.extend(e.id for e in episodes)
        return int(self.inner.add(episodes))


def test_store_outage_spools_and_replays_without_loss_or_duplicates(use_model_server: Any) -> None:
    settings = get_settings()
    store = OutageStore(Container(settings).episodes)
    capture = EpisodeCapture.start(
        store,
        spool_dir=settings.spool_dir,
        policy=CapturePolicy(flush_seconds=0.05, retry_seconds=0.05),
        close_at_exit=False,
    )
    running = run_agent(build_agent(settings, agent_id="autonomous-agent", capture=capture), settings)
    try:
        ids = [answer(running.post(workshop_body(q)))["episode_id"] for q in WORKSHOP_QUERIES]
        assert capture.flush()
        store.down = True
        ids += [answer(running.post(workshop_body(q)))["episode_id"] for q in WORKSHOP_QUERIES * 4]
        assert capture.flush()
        assert list(settings.spool_dir.glob("episodes-*.jsonl")), "the outage should have spooled"
        store.down = False
        ids += [answer(running.post(workshop_body(q)))["episode_id"] for q in WORKSHOP_QUERIES]
    finally:
        running.stop()  # shuts the app down, which closes the agent and flushes capture
    episodes = list(Container(settings).episodes.query(EpisodeQuery(order="oldest")))
    assert sorted(e.id for e in episodes) == sorted(ids)
    assert len(ids) == len(set(ids)) == 30
    assert len(store.sent) == len(set(store.sent)) == 30
    assert not list(settings.spool_dir.glob("*.jsonl"))
    stats = capture.stats()
    assert stats is not None
    assert stats.spooled >= 20
    assert stats.replayed == stats.spooled


def test_malformed_json_rpc_over_http_is_never_a_500(start_agent: Callable[..., RunningAgent]) -> None:
    running = start_agent(capture=True)
    cases = [
        b"{nope",
        b"",
        b"[]",
        b'{"jsonrpc": "2.0"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
        b"\xff\xfe",
    ]
    for payload in cases:
        response = httpx.post(
            f"{running.url}/message", content=payload, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (payload, response.status_code)
        assert response.json()["error"]["code"] in (-32700, -32600, -32602)
    wrong_type = httpx.post(
        f"{running.url}/message", content=b"query=churn", headers={"Content-Type": "text/plain"}
    )
    assert 400 <= wrong_type.status_code < 500
    unknown = running.post({"jsonrpc": "2.0", "id": 1, "method": "resources/destroy"})
    assert unknown.json()["error"]["code"] == -32601
    assert not stored(running)


def test_the_tuned_model_from_env_answers_and_is_recorded(
    start_agent: Callable[..., RunningAgent], model_server_tuned_model: str
) -> None:
    running = start_agent(env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": model_server_tuned_model})
    answers = [answer(running.post(workshop_body(sample.query))) for sample in workshop_samples()]
    assert {a["model_version"] for a in answers} == {model_server_tuned_model}
    correct = sum(a["tool"] == s.tool for a, s in zip(answers, workshop_samples(), strict=True))
    assert correct >= 4  # the tuned model learned tool selection from generated requests
    assert {e.model_version for e in stored(running)} == {model_server_tuned_model}


def test_an_unknown_tuned_model_is_a_captured_tool_error(start_agent: Callable[..., RunningAgent]) -> None:
    running = start_agent(env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:local-base:nope:000"})
    given = answer(running.post(workshop_body(WORKSHOP_QUERIES[0])))
    assert given["_is_error"] is True
    assert "404" in given["error"]
    (episode,) = stored(running)
    assert episode.model_version == "ft:local-base:nope:000"
    assert episode.error


def test_a_promotion_in_the_registry_is_picked_up_without_restart(
    start_agent: Callable[..., RunningAgent], model_server_tuned_model: str
) -> None:
    running = start_agent(follow_registry=True)
    assert answer(running.post(workshop_body(WORKSHOP_QUERIES[0])))["model_version"] == "local-base"
    registry = Container(running.settings).models
    version, _ = registry.register(
        ModelVersion(
            id="autonomous-agent:v1",
            agent_id="autonomous-agent",
            version=1,
            model_name=model_server_tuned_model,
        )
    )
    registry.activate("autonomous-agent", version.id)
    running.agent.models._checked_at = None  # skip the ~2 s re-check interval instead of sleeping
    assert (
        answer(running.post(workshop_body(WORKSHOP_QUERIES[0])))["model_version"] == model_server_tuned_model
    )
    health = httpx.get(f"{running.url}/healthz").json()
    assert (health["model_version"], health["model_source"]) == (model_server_tuned_model, "registry")

"""Capture into Cosmos DB (``rl_episodes`` on the emulator, real SDK): batching and a duplicate-free replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lightning.bootstrap import Container
from lightning.bootstrap_agent import episode_capture
from lightning.capture import CapturePolicy, EpisodeCapture
from lightning.domain.episode import Action, Episode, State
from lightning.ports.episodes import EpisodeQuery

pytestmark = pytest.mark.cosmos


def _episode(i: int) -> Episode:
    return Episode(
        id=f"episode-cap-{i:04d}",
        agent_id="autonomous-agent",
        state=State(query="Analyze customer churn for Q4 2025", context={"user": "analyst@contoso.com"}),
        action=Action(tool="analyze_churn", arguments={"period": "Q4 2025"}),
        result={"period": "Q4 2025", "churn_rate": 0.05, "at_risk_customers": 38},
        model_version="gpt-4o-mini",
        latency_ms=812.0,
    )


def test_capture_with_the_cosmos_store_built_from_settings(cosmos_settings: Callable[..., Any]) -> None:
    settings = cosmos_settings(enable_episode_capture=True, capture_flush_seconds=0.05)
    capture = episode_capture(settings, close_at_exit=False)
    for i in range(25):
        capture.record(_episode(i))
    capture.close()
    store = Container(settings).episodes
    stored = list(store.query(EpisodeQuery(agent_id="autonomous-agent")))
    assert sorted(e.id for e in stored) == [f"episode-cap-{i:04d}" for i in range(25)]
    assert all(e.state.context["user"] == "[REDACTED]" for e in stored)


def test_a_replayed_spool_does_not_duplicate_what_already_landed(cosmos_settings: Callable[..., Any]) -> None:
    settings = cosmos_settings()
    store = Container(settings).episodes
    store.add([_episode(i) for i in range(10)])  # the first half landed before the process died
    settings.spool_dir.mkdir(parents=True)
    dead_pid = 2**22 + 4321
    lines = "".join(json.dumps(_episode(i).to_document()) + "\n" for i in range(20))
    (settings.spool_dir / f"episodes-{dead_pid}-0badc0de.jsonl").write_text(lines)
    capture = EpisodeCapture.start(
        store, spool_dir=settings.spool_dir, policy=CapturePolicy(batch_size=7), close_at_exit=False
    )
    assert capture.flush()
    capture.close()
    assert store.count(EpisodeQuery(agent_id="autonomous-agent")) == 20
    stats = capture.stats()
    assert stats is not None
    assert (stats.replayed, stats.new) == (20, 10)
    assert not list(settings.spool_dir.glob("*.jsonl"))

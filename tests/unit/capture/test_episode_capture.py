"""The public capture API: off unless enabled, one episode per tool call, a store that cannot be built."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import lightning.capture
from lightning.bootstrap_agent import capture_policy, episode_capture
from lightning.capture import CapturePolicy, EpisodeCapture, new_episode_id
from lightning.config import Settings
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.unit.capture.support import episode, policy


def test_the_public_api_is_what_all_says() -> None:
    # Everything the package imports for its users is in __all__ (submodules and the future import aside).
    public = {
        name
        for name, value in vars(lightning.capture).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert sorted(lightning.capture.__all__) == sorted(public)


def test_the_policy_comes_from_the_capture_settings(tmp_path: Path) -> None:
    settings = Settings(
        lightning_home=tmp_path,
        capture_batch_size=7,
        capture_flush_seconds=0.25,
        capture_max_result_chars=900,
    )
    assert capture_policy(settings) == CapturePolicy(
        batch_size=7, flush_seconds=0.25, max_result_chars=900, max_text_chars=900
    )


def test_capture_is_off_unless_enabled(tmp_path: Path) -> None:
    capture = episode_capture(Settings(lightning_home=tmp_path), store=InMemoryEpisodeStore())
    assert not capture.enabled
    with capture.tool_call(agent_id="autonomous-agent", query="q") as call:
        call.action("analyze_churn", {"period": "Q4 2025"})
    assert capture.flush()
    assert capture.stats() is None


def test_tool_call_records_one_episode_in_the_workshop_shape(tmp_path: Path) -> None:
    store = InMemoryEpisodeStore()
    settings = Settings(lightning_home=tmp_path, enable_episode_capture=True)
    with episode_capture(settings, store=store, close_at_exit=False) as capture:
        with capture.tool_call(
            agent_id="autonomous-agent",
            query="Analyze customer churn for Q4 2025",
            model_version="local-base",
        ) as call:
            call.action("analyze_churn", {"period": "Q4 2025"})
            call.result = {"churn_rate": 0.12, "at_risk_customers": 450}
            call.response = "Churn 12%"
        failing_id = new_episode_id()

        def fail() -> None:
            with capture.tool_call(agent_id="autonomous-agent", query="x", episode_id=failing_id) as failing:
                failing.action("sales_report", {"region": "mars"})
                raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            fail()
        assert capture.flush()
    first, second = (store.get(call.id), store.get(failing_id))
    doc = first.to_document()
    assert {"id", "agent_id", "timestamp", "state", "action", "result", "reward", "labeled"} <= set(doc)
    assert doc["state"]["query"] == "Analyze customer churn for Q4 2025"
    assert doc["action"] == {"tool": "analyze_churn", "arguments": {"period": "Q4 2025"}}
    assert doc["reward"] is None
    assert doc["labeled"] is False
    assert first.model_version == "local-base"
    assert first.latency_ms is not None
    assert first.error is None
    assert second.error == "ValueError: boom"
    assert second.action.tool == "sales_report"


def test_a_store_that_cannot_even_be_built_spools(tmp_path: Path) -> None:
    def broken() -> InMemoryEpisodeStore:
        raise ConnectionError("no route to cosmos")

    capture = EpisodeCapture.start(broken, spool_dir=tmp_path / "spool", policy=policy(), close_at_exit=False)
    capture.record(episode(1))
    assert capture.flush()
    capture.close()
    stats = capture.stats()
    assert stats is not None
    assert stats.spooled == 1
    assert "no route" in (stats.last_error or "")
    assert new_episode_id() != new_episode_id()

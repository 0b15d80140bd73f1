"""Capture into the real SQLite store, including the flush at interpreter exit (no explicit close)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.bootstrap_agent import episode_capture
from lightning.config import Settings
from lightning.ports.episodes import EpisodeQuery

REPO = Path(__file__).resolve().parents[3]


def test_capture_built_from_settings_writes_to_the_configured_sqlite_store(tmp_path: Path) -> None:
    settings = Settings(
        lightning_home=tmp_path / "home", enable_episode_capture=True, capture_flush_seconds=0.05
    )
    capture = episode_capture(settings, close_at_exit=False)
    for i in range(1200):
        with capture.tool_call(
            agent_id="approval-agent", query=f"Top {i % 50 + 1} products by margin"
        ) as call:
            call.action("top_products", {"n": i % 50 + 1, "metric": "margin"})
            call.result = {"metric": "margin", "products": list(range(i % 50 + 1))}
    capture.close()
    store = SqliteEpisodeStore.at(settings.sqlite_path)
    assert store.count(EpisodeQuery(agent_id="approval-agent")) == 1200
    stats = capture.stats()
    assert stats is not None
    assert (stats.recorded, stats.new, stats.spooled) == (1200, 1200, 0)


def test_episodes_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = textwrap.dedent(
        """
        from lightning.bootstrap_agent import episode_capture
        from lightning.config import Settings

        # flush_seconds is long on purpose: only the exit hook can get these into the store in time.
        settings = Settings(enable_episode_capture=True, capture_flush_seconds=60)
        capture = episode_capture(settings)
        for i in range(250):
            with capture.tool_call(agent_id="autonomous-agent", query="Analyze customer churn for Q4 2025") as call:
                call.action("analyze_churn", {"period": "Q4 2025"})
                call.result = {"churn_rate": 0.12, "at_risk_customers": 450}
        # no close(): the atexit hook must flush
        """
    )
    env = {**os.environ, "LIGHTNING_HOME": str(home), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    store = SqliteEpisodeStore.at(Settings(lightning_home=home).sqlite_path)
    assert store.count(EpisodeQuery()) == 250

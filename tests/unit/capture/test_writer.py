"""Capture: redaction/truncation, batching, store outage → spool → replay with no loss and no duplicates."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from lightning.capture import CapturePolicy, EpisodeCapture, new_episode_id
from lightning.config import Settings
from lightning.domain.episode import Action, Episode, State
from lightning.ports.episodes import EpisodeQuery
from lightning.services.capture import EpisodeWriter, prepare_episode, shrink_result
from tests.fakes.episodes import InMemoryEpisodeStore


class FlakyStore:
    """Wraps a real store; raises while ``down`` (a store outage), counts every add call."""

    def __init__(self, inner: InMemoryEpisodeStore) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0
        self.ids_sent: list[str] = []
        self.lock = threading.Lock()

    def add(self, episodes: Sequence[Episode]) -> int:
        with self.lock:
            self.calls += 1
            if self.down:
                raise ConnectionError("store unreachable")
            self.ids_sent.extend(e.id for e in episodes)
            return self.inner.add(episodes)


def _episode(i: int, **changes: object) -> Episode:
    base = Episode(
        id=f"episode-{i:06d}",
        agent_id="autonomous-agent",
        state=State(query="Analyze customer churn for Q4 2025", context={"session": "s1"}),
        action=Action(tool="analyze_churn", arguments={"period": "Q4 2025"}),
        result={"period": "Q4 2025", "churn_rate": 0.05, "at_risk_customers": 38},
        model_version="local-base",
        latency_ms=1.5,
    )
    return base.model_copy(update=changes)


def _all(store: InMemoryEpisodeStore) -> list[Episode]:
    return list(store.query(EpisodeQuery(order="oldest")))


def _policy(**overrides: float) -> CapturePolicy:
    values = {"batch_size": 50, "flush_seconds": 0.05, "retry_seconds": 0.05, **overrides}
    return CapturePolicy(**values)  # type: ignore[arg-type]


# --- prepare ---------------------------------------------------------------------------------


def test_clean_episode_passes_through_untouched() -> None:
    episode = _episode(1)
    assert prepare_episode(episode) is episode


def test_secrets_and_pii_are_redacted_everywhere() -> None:
    episode = _episode(
        1,
        state=State(
            query="churn for bob@example.com with api_key=sk-abcdefghijklmnopqrstuvwx",
            context={"user": "analyst@contoso.com", "password": "hunter2hunter2"},
        ),
        result={"period": "Q4", "contact": "call +1 415 555 0100", "token": "abc"},
        response="sent to alice@example.org",
        error="auth failed with Bearer abcdefghijklmnopqrstuvwxyz123456",
    )
    prepared = prepare_episode(episode)
    text = json.dumps(prepared.to_document())
    for leaked in (
        "bob@example.com",
        "sk-abcdef",
        "analyst@contoso.com",
        "hunter2",
        "555 0100",
        "alice@",
        "abcdefghijklmnopqrstuvwxyz123456",
    ):
        assert leaked not in text, leaked
    assert "[REDACTED]" in prepared.state.query
    assert prepared.result["period"] == "Q4"
    assert prepared.id == episode.id


def test_large_results_shrink_but_keep_their_keys() -> None:
    result = {"metric": "revenue", "products": [{"rank": i, "name": "x" * 40} for i in range(500)]}
    shrunk = shrink_result(result, 2000)
    assert len(json.dumps(shrunk)) <= 2000
    assert shrunk["metric"] == "revenue"
    assert shrunk["products"]
    assert shrunk["_truncated"] == {"products": 500}
    assert len(json.dumps(shrink_result("y" * 10_000, 500))) < 600
    prepared = prepare_episode(_episode(1, result=result, response="z" * 20_000), max_result_chars=3000)
    assert len(json.dumps(prepared.result)) <= 3000
    assert len(prepared.response or "") < 8100


# --- writer ----------------------------------------------------------------------------------


def test_episodes_are_written_in_batches_and_flush_waits(tmp_path: Path) -> None:
    store = FlakyStore(InMemoryEpisodeStore())
    writer = EpisodeWriter(
        store, spool_dir=tmp_path / "spool", policy=_policy(batch_size=100, flush_seconds=5)
    ).start()
    for i in range(250):
        writer.record(_episode(i))
    assert writer.flush(timeout=10)
    assert len(_all(store.inner)) == 250
    assert store.calls <= 4  # batched, not one write per episode
    writer.close()
    stats = writer.stats()
    assert (stats.recorded, stats.written, stats.new, stats.spooled) == (250, 250, 250, 0)


def test_outage_spools_then_replays_with_no_loss_and_no_duplicates(tmp_path: Path) -> None:
    inner = InMemoryEpisodeStore()
    store = FlakyStore(inner)
    writer = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=_policy()).start()
    for i in range(40):
        writer.record(_episode(i))
    assert writer.flush()
    store.down = True
    for i in range(40, 160):
        writer.record(_episode(i))
    assert writer.flush()
    assert len(_all(inner)) == 40
    assert writer.stats().spooled == 120
    assert list((tmp_path / "spool").glob("episodes-*.jsonl"))
    store.down = False
    for i in range(160, 200):
        writer.record(_episode(i))
    assert writer.flush()
    writer.close()
    ids = [e.id for e in _all(inner)]
    assert sorted(ids) == [f"episode-{i:06d}" for i in range(200)]
    assert len(store.ids_sent) == len(set(store.ids_sent)) == 200
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    stats = writer.stats()
    assert stats.spooled >= 120  # the store answers again, but the writer waits retry_seconds to re-try it
    assert stats.replayed == stats.spooled
    assert stats.store_failures >= 1


def test_episodes_spooled_at_shutdown_are_replayed_by_the_next_writer(tmp_path: Path) -> None:
    inner = InMemoryEpisodeStore()
    store = FlakyStore(inner)
    store.down = True
    first = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=_policy()).start()
    for i in range(30):
        first.record(_episode(i))
    first.close()
    assert not _all(inner)
    # A torn line (a crash mid-write) must not stop the replay of the good lines.
    spool = next((tmp_path / "spool").glob("episodes-*.jsonl"))
    with spool.open("a") as handle:
        handle.write('{"id": "episode-torn", "agent_')
    store.down = False
    second = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=_policy()).start()
    assert second.flush()
    second.close()
    assert sorted(e.id for e in _all(inner)) == [f"episode-{i:06d}" for i in range(30)]
    assert second.stats().corrupt_spool_lines == 1
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_replay_of_a_half_landed_batch_does_not_duplicate(tmp_path: Path) -> None:
    inner = InMemoryEpisodeStore([_episode(i) for i in range(10)])
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never a live process
    lines = [json.dumps(_episode(i).to_document()) for i in range(20)]
    (spool_dir / f"episodes-{dead_pid}-abc123.jsonl").write_text("\n".join(lines) + "\n")
    writer = EpisodeWriter(FlakyStore(inner), spool_dir=spool_dir, policy=_policy()).start()
    assert writer.flush()
    writer.close()
    assert sorted(e.id for e in _all(inner)) == [f"episode-{i:06d}" for i in range(20)]
    assert writer.stats().new == 10


def test_spool_files_of_live_processes_are_left_alone(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    live = spool_dir / f"episodes-{os.getppid()}-feedbeef.jsonl"
    live.write_text(json.dumps(_episode(1).to_document()) + "\n")
    inner = InMemoryEpisodeStore()
    writer = EpisodeWriter(FlakyStore(inner), spool_dir=spool_dir, policy=_policy()).start()
    assert writer.flush()
    writer.close()
    assert live.exists()
    assert not _all(inner)


def test_a_full_queue_spools_instead_of_dropping(tmp_path: Path) -> None:
    gate = threading.Event()

    class SlowStore(FlakyStore):
        def add(self, episodes: Sequence[Episode]) -> int:
            gate.wait(10)
            return super().add(episodes)

    inner = InMemoryEpisodeStore()
    writer = EpisodeWriter(
        SlowStore(inner), spool_dir=tmp_path / "spool", policy=_policy(max_queue=5, batch_size=5)
    ).start()
    for i in range(40):
        writer.record(_episode(i))
    assert writer.stats().spooled > 0
    gate.set()
    assert writer.flush()
    writer.close()
    assert sorted(e.id for e in _all(inner)) == [f"episode-{i:06d}" for i in range(40)]


# --- public API ------------------------------------------------------------------------------


def test_capture_is_off_unless_enabled(tmp_path: Path) -> None:
    capture = EpisodeCapture.from_settings(Settings(lightning_home=tmp_path), store=InMemoryEpisodeStore())
    assert not capture.enabled
    with capture.tool_call(agent_id="autonomous-agent", query="q") as call:
        call.action("analyze_churn", {"period": "Q4 2025"})
    assert capture.flush()
    assert capture.stats() is None


def test_tool_call_records_one_episode_in_the_workshop_shape(tmp_path: Path) -> None:
    store = InMemoryEpisodeStore()
    settings = Settings(lightning_home=tmp_path, enable_episode_capture=True)
    with EpisodeCapture.from_settings(settings, store=store, close_at_exit=False) as capture:
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

    capture = EpisodeCapture.start(
        broken, spool_dir=tmp_path / "spool", policy=_policy(), close_at_exit=False
    )
    capture.record(_episode(1))
    assert capture.flush()
    capture.close()
    stats = capture.stats()
    assert stats is not None
    assert stats.spooled == 1
    assert "no route" in (stats.last_error or "")
    assert new_episode_id() != new_episode_id()


def test_extra_state_fields_and_secret_named_keys_are_redacted_too() -> None:
    episode = _episode(1, state=State(query="q", note="mail bob@example.com", context={"session": "s"}))
    episode = episode.model_copy(update={"action": Action(tool="t", arguments={"api_key": "plainvalue123"})})
    prepared = prepare_episode(episode)
    assert prepared.to_document()["state"]["note"] == "mail [REDACTED]"
    assert prepared.action.arguments == {"api_key": "[REDACTED]"}


def test_store_and_disk_both_failing_counts_losses_and_keeps_the_writer_alive(tmp_path: Path) -> None:
    store = FlakyStore(InMemoryEpisodeStore())
    store.down = True
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    writer = EpisodeWriter(store, spool_dir=blocker, policy=_policy()).start()
    for i in range(5):
        writer.record(_episode(i))
    assert writer.flush()
    assert writer.alive
    assert writer.stats().lost == 5
    store.down = False
    writer.record(_episode(99))
    assert writer.flush()
    writer.close()
    assert [e.id for e in _all(store.inner)] == ["episode-000099"]


def test_the_fast_redaction_walk_matches_redact_value() -> None:
    from lightning.domain.redaction import redact_value
    from lightning.services.capture import _redact

    corpus = [
        "plain text, Q4 2025, 2025-10",
        "write to bob@example.com or call +1 415 555 0100",
        {
            "api_key": "abcdef123456",
            "password": 123456,
            "token": "",
            "secret": True,
            "note": "sk-" + "a" * 30,
        },
        {"nested": [{"email": "x@y.io"}, ("tuple", "AKIAABCDEFGHIJKLMNOP")], "n": 3, "none": None},
        ["Mechanical Keyboard", {"client_secret": "s3cr3t-value"}, 4.5, False],
        {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
        "card 4111 1111 1111 1111 and ssn 123-45-6789",
    ]
    for value in corpus:
        assert _redact(value) == redact_value(value), value
        assert _redact(value) == redact_value(value), value  # second time through the caches

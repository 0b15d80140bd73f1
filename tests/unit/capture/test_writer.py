"""The capture writer: batching, store outage → spool → replay with no loss and no duplicates."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from lightning.capture import EpisodeWriter
from lightning.domain.episode import Episode
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.unit.capture.support import FlakyStore, episode, policy, stored


def test_episodes_are_written_in_batches_and_flush_waits(tmp_path: Path) -> None:
    store = FlakyStore(InMemoryEpisodeStore())
    writer = EpisodeWriter(
        store, spool_dir=tmp_path / "spool", policy=policy(batch_size=100, flush_seconds=5)
    ).start()
    for i in range(250):
        writer.record(episode(i))
    assert writer.flush(timeout=10)
    assert len(stored(store.inner)) == 250
    assert store.calls <= 4  # batched, not one write per episode
    writer.close()
    stats = writer.stats()
    assert (stats.recorded, stats.written, stats.new, stats.spooled) == (250, 250, 250, 0)


def test_outage_spools_then_replays_with_no_loss_and_no_duplicates(tmp_path: Path) -> None:
    inner = InMemoryEpisodeStore()
    store = FlakyStore(inner)
    writer = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=policy()).start()
    for i in range(40):
        writer.record(episode(i))
    assert writer.flush()
    store.down = True
    for i in range(40, 160):
        writer.record(episode(i))
    assert writer.flush()
    assert len(stored(inner)) == 40
    assert writer.stats().spooled == 120
    assert list((tmp_path / "spool").glob("episodes-*.jsonl"))
    store.down = False
    for i in range(160, 200):
        writer.record(episode(i))
    assert writer.flush()
    writer.close()
    ids = [e.id for e in stored(inner)]
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
    first = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=policy()).start()
    for i in range(30):
        first.record(episode(i))
    first.close()
    assert not stored(inner)
    # A torn line (a crash mid-write) must not stop the replay of the good lines.
    spool = next((tmp_path / "spool").glob("episodes-*.jsonl"))
    with spool.open("a") as handle:
        handle.write('{"id": "episode-torn", "agent_')
    store.down = False
    second = EpisodeWriter(store, spool_dir=tmp_path / "spool", policy=policy()).start()
    assert second.flush()
    second.close()
    assert sorted(e.id for e in stored(inner)) == [f"episode-{i:06d}" for i in range(30)]
    assert second.stats().corrupt_spool_lines == 1
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_replay_of_a_half_landed_batch_does_not_duplicate(tmp_path: Path) -> None:
    inner = InMemoryEpisodeStore([episode(i) for i in range(10)])
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never a live process
    lines = [json.dumps(episode(i).to_document()) for i in range(20)]
    (spool_dir / f"episodes-{dead_pid}-abc123.jsonl").write_text("\n".join(lines) + "\n")
    writer = EpisodeWriter(FlakyStore(inner), spool_dir=spool_dir, policy=policy()).start()
    assert writer.flush()
    writer.close()
    assert sorted(e.id for e in stored(inner)) == [f"episode-{i:06d}" for i in range(20)]
    assert writer.stats().new == 10


def test_spool_files_of_live_processes_are_left_alone(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    live = spool_dir / f"episodes-{os.getppid()}-feedbeef.jsonl"
    live.write_text(json.dumps(episode(1).to_document()) + "\n")
    inner = InMemoryEpisodeStore()
    writer = EpisodeWriter(FlakyStore(inner), spool_dir=spool_dir, policy=policy()).start()
    assert writer.flush()
    writer.close()
    assert live.exists()
    assert not stored(inner)


def test_a_full_queue_spools_instead_of_dropping(tmp_path: Path) -> None:
    gate = threading.Event()

    class SlowStore(FlakyStore):
        def add(self, episodes: Sequence[Episode]) -> int:
            gate.wait(10)
            return super().add(episodes)

    inner = InMemoryEpisodeStore()
    writer = EpisodeWriter(
        SlowStore(inner), spool_dir=tmp_path / "spool", policy=policy(max_queue=5, batch_size=5)
    ).start()
    for i in range(40):
        writer.record(episode(i))
    assert writer.stats().spooled > 0
    gate.set()
    assert writer.flush()
    writer.close()
    assert sorted(e.id for e in stored(inner)) == [f"episode-{i:06d}" for i in range(40)]


def test_store_and_disk_both_failing_counts_losses_and_keeps_the_writer_alive(tmp_path: Path) -> None:
    store = FlakyStore(InMemoryEpisodeStore())
    store.down = True
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    writer = EpisodeWriter(store, spool_dir=blocker, policy=policy()).start()
    for i in range(5):
        writer.record(episode(i))
    assert writer.flush()
    assert writer.alive
    assert writer.stats().lost == 5
    store.down = False
    writer.record(episode(99))
    assert writer.flush()
    writer.close()
    assert [e.id for e in stored(store.inner)] == ["episode-000099"]

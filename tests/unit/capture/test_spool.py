"""The spool on disk: a file is replayed by one writer only, and a running writer's file is nobody's orphan."""

from __future__ import annotations

from pathlib import Path

from lightning.capture.spool import Spool
from tests.unit.capture.support import episode


def test_an_orphan_is_claimed_by_exactly_one_spool(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never a live process
    orphan = tmp_path / f"episodes-{dead_pid}-abc123.jsonl"
    orphan.write_text(episode(1).model_dump_json() + "\n")
    first, second = Spool(tmp_path), Spool(tmp_path)
    assert first.to_replay() == second.to_replay() == [orphan]
    claimed = first.claim(orphan)
    assert claimed is not None
    assert second.claim(orphan) is None
    assert first.claim(claimed) == claimed  # already its own: no second rename
    chunks = list(first.read(claimed, chunk_size=10, on_corrupt=lambda: None))
    assert [[e.id for e in chunk] for chunk in chunks] == [["episode-000001"]]
    claimed.unlink()
    assert first.settle()
    assert not first.pending


def test_a_running_spools_file_is_left_to_it_until_it_stops(tmp_path: Path) -> None:
    running, other = Spool(tmp_path), Spool(tmp_path)
    running.start()
    running.append([episode(i) for i in range(3)])
    assert running.pending
    assert other.to_replay() == []
    running.stop()
    assert other.to_replay() == [running.path]


def test_torn_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([episode(i) for i in range(5)])
    with spool.path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "episode-torn", "agent_')
    torn: list[int] = []
    chunks = list(spool.read(spool.path, chunk_size=2, on_corrupt=lambda: torn.append(1)))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert torn == [1]

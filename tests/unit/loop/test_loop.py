"""The local loop on in-memory fakes: labels from the change sequence, moves its cursor, survives hiccups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightning.domain.errors import TransientProviderError
from lightning.ports.bundles import LoopPorts
from lightning.ports.episodes import ChangeBatch, EpisodeQuery
from lightning.services.datasets import DatasetPolicy
from lightning.services.loop import LABELING_CURSOR, LoopPolicy, run_loop
from tests.fakes.bundles import MemoryCursors, loop_ports
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode


class FlakyEpisodes(InMemoryEpisodeStore):
    """Fails the first change read, as a store outage would."""

    failures = 1

    def changes_since(self, cursor: int, *, limit: int = 1000) -> ChangeBatch:
        if self.failures:
            self.failures -= 1
            raise TransientProviderError("store unavailable (503)")
        return super().changes_since(cursor, limit=limit)


class StepClock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 2, 7, 12, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.moment += timedelta(seconds=seconds)


def _ports(episodes: InMemoryEpisodeStore, cursors: MemoryCursors, work_dir: Path) -> LoopPorts:
    return loop_ports(work_dir, episodes=episodes, cursors=cursors)


def test_a_transient_failure_is_retried_on_the_next_pass_and_nothing_is_skipped(tmp_path: Path) -> None:
    episodes = FlakyEpisodes([make_episode(f"e{i}") for i in range(5)])
    cursors = MemoryCursors()
    policy = LoopPolicy(datasets=DatasetPolicy(min_episodes=1000))
    reports = []

    passes = run_loop(
        _ports(episodes, cursors, tmp_path),
        policy,
        clock=StepClock(),
        interval_seconds=1,
        until_idle=True,
        max_iterations=10,
        on_iteration=lambda _, report: reports.append(report),
    )

    assert reports[0].errors == ["TransientProviderError: store unavailable (503)"]
    assert reports[1].labeled == 5
    assert passes == 3  # failed pass, labeling pass, idle pass
    assert all(episode.labeled for episode in episodes.query(EpisodeQuery()))
    assert cursors.get(LABELING_CURSOR) > 0


def test_labels_written_by_the_loop_do_not_loop(tmp_path: Path) -> None:
    episodes = InMemoryEpisodeStore([make_episode(f"e{i}") for i in range(3)])
    policy = LoopPolicy(datasets=DatasetPolicy(min_episodes=1000))
    reports = []
    run_loop(
        _ports(episodes, MemoryCursors(), tmp_path),
        policy,
        clock=StepClock(),
        interval_seconds=1,
        until_idle=True,
        max_iterations=10,
        on_iteration=lambda _, report: reports.append(report),
    )
    assert [report.labeled for report in reports] == [3, 0]

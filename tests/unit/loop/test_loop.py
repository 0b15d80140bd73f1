"""The local loop on in-memory fakes: labels from the change sequence, moves its cursor, survives hiccups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.tokens import O200kTokenCounter
from lightning.domain.errors import TransientProviderError
from lightning.ports.episodes import ChangeBatch, EpisodeQuery
from lightning.services.datasets import DatasetPolicy
from lightning.services.loop import LABELING_CURSOR, LoopPolicy, LoopPorts, run_loop
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.models import InMemoryModelRegistry
from tests.fakes.queue import InMemoryQueue
from tests.fakes.rollout import RecordingDeployer, RecordingRollout
from tests.fakes.runs import InMemoryRunStore


class Cursors:
    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def get(self, name: str) -> int:
        return self.positions.get(name, 0)

    def set(self, name: str, position: int) -> None:
        self.positions[name] = position


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


class NoChat:
    def choose_tool(self, **_: object) -> object:
        raise AssertionError("nothing is promoted in these tests")


def _ports(episodes: InMemoryEpisodeStore, cursors: Cursors) -> LoopPorts:
    return LoopPorts(
        episodes=episodes,
        cursors=cursors,
        agents=YamlAgentRegistry(),
        evaluator=RubricEvaluator(),
        datasets=InMemoryDatasetStore(),
        blobs=InMemoryBlobStore(),
        tokens=O200kTokenCounter(),
        queue=InMemoryQueue(),
        runs=InMemoryRunStore(),
        provider=FakeFineTuneProvider(),
        models=InMemoryModelRegistry(),
        chat=NoChat(),  # type: ignore[arg-type]
        deployer=RecordingDeployer(),
        rollout=RecordingRollout(),
    )


def test_a_transient_failure_is_retried_on_the_next_pass_and_nothing_is_skipped(tmp_path: Path) -> None:
    episodes = FlakyEpisodes([make_episode(f"e{i}") for i in range(5)])
    cursors = Cursors()
    policy = LoopPolicy(datasets=DatasetPolicy(min_episodes=1000), work_dir=tmp_path)
    reports = []

    passes = run_loop(
        _ports(episodes, cursors),
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
    policy = LoopPolicy(datasets=DatasetPolicy(min_episodes=1000), work_dir=tmp_path)
    reports = []
    run_loop(
        _ports(episodes, Cursors()),
        policy,
        clock=StepClock(),
        interval_seconds=1,
        until_idle=True,
        max_iterations=10,
        on_iteration=lambda _, report: reports.append(report),
    )
    assert [report.labeled for report in reports] == [3, 0]

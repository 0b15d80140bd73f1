"""kill -9 in the middle of a command, then the same command again: nothing lost, nothing twice.

Each test kills a real ``python -m lightning.cli`` process at a fault point (``tests/faults/killing.py``),
then runs the same command again in-process and checks the guarantee (docs/guarantees.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.domain.episode import Label
from lightning.ports.episodes import EpisodeQuery
from tests.fakes.datasets import labeled_episode
from tests.faults.killing import kill_at
from tests.integration.training.conftest import store_dataset
from tests.integration.training.ft_server import FineTuneServer

AGENT = "autonomous-agent"
pytestmark = pytest.mark.faults


def _all(agent_id: str = AGENT) -> list:  # type: ignore[type-arg]
    return list(Container(get_settings()).episodes.query(EpisodeQuery(agent_id=agent_id)))


def test_import_killed_after_a_batch_then_rerun_stores_every_episode_once(tmp_path: Path) -> None:
    source = tmp_path / "episodes.jsonl"
    episodes = [labeled_episode(i, reward=None) for i in range(1_500)]
    source.write_text("".join(json.dumps(e.to_document()) + "\n" for e in episodes))

    kill_at("import.after_batch:2", ["import-episodes", str(source)], marker_dir=tmp_path / "faults")
    assert len(_all()) == 1_000  # two batches of 500 landed before the kill, no more

    assert main(["import-episodes", str(source)]) == 0
    stored = _all()
    assert sorted(e.id for e in stored) == sorted(e.id for e in episodes)  # none lost, none twice


def test_label_batch_killed_midway_then_rerun_labels_each_once_and_keeps_human_labels(tmp_path: Path) -> None:
    store = Container(get_settings()).episodes
    store.add([labeled_episode(i, reward=None) for i in range(1_200)])
    humans = {f"ep-{i:07d}" for i in range(0, 1_200, 97)}
    for episode_id in humans:
        store.save_label(
            episode_id,
            Label(source="human", score=0.1, reason="a person says no", labeled_by="ana"),
            agent_id=AGENT,
        )
    args = ["label-batch", "--agent-id", AGENT, "--auto-label", "--evaluator", "rubric"]

    kill_at("label.after_chunk:1", args, marker_dir=tmp_path / "faults")
    assert main(args) == 0

    for episode in _all():
        autos = [label for label in episode.labels if label.source == "auto"]
        assert len(autos) <= 1, episode.id  # never labeled twice
        if episode.id in humans:
            assert episode.label is not None
            assert episode.label.source == "human"
            assert episode.reward == pytest.approx(0.1)
        else:
            assert len(autos) == 1, episode.id  # never skipped


BUILD = ["build-dataset", "--agent-id", AGENT, "--name", "autonomous-agent-v1", "--min-reward", "0.7"]


def test_build_killed_before_its_commit_leaves_nothing_then_rerun_builds_once(tmp_path: Path) -> None:
    rewards = [0.7, 0.82, 0.9, 0.98]
    Container(get_settings()).episodes.add([labeled_episode(i, reward=rewards[i % 4]) for i in range(400)])

    kill_at("build.before_commit", BUILD, marker_dir=tmp_path / "faults")
    datasets = Container(get_settings()).datasets
    assert datasets.list() == []  # all-or-nothing: files may be uploaded, no manifest names them

    assert main(BUILD) == 0
    [manifest] = Container(get_settings()).datasets.list()
    assert manifest.episode_count + len(manifest.validation_episode_ids) > 0
    assert main(BUILD) == 0  # the same build again: the same dataset, not a second one
    assert [m.content_sha256 for m in Container(get_settings()).datasets.list()] == [manifest.content_sha256]


@pytest.fixture
def fine_tune_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FineTuneServer]:
    server = FineTuneServer().start()
    server.file_polls_before_processed = 0
    monkeypatch.setenv("LIGHTNING_MODEL_SERVER", server.base_url)
    store_dataset(get_settings())
    yield server
    server.stop()


START = [
    "start-training",
    "--agent-id",
    AGENT,
    "--dataset-name",
    "autonomous-agent-v1",
    "--base-model",
    "gpt-4o-mini",
]


def test_start_training_killed_between_upload_and_job_creation_then_rerun_pays_for_one_job(
    fine_tune_server: FineTuneServer, tmp_path: Path
) -> None:
    kill_at("training.before_create_job", START, marker_dir=tmp_path / "faults")
    assert fine_tune_server.job_creations() == 0
    uploads = len(fine_tune_server.calls("POST", r"/files$"))
    assert uploads >= 1

    assert main(START) == 0
    assert main(START) == 0  # and again: the same run, the same job
    assert fine_tune_server.job_creations() == 1
    [run] = Container(get_settings()).runs.list()
    assert run.job_id is not None
    # The files uploaded before the kill were reused, not uploaded again.
    assert len(fine_tune_server.calls("POST", r"/files$")) == uploads
    assert Counter(r.dataset_name for r in Container(get_settings()).runs.list()) == {
        "autonomous-agent-v1": 1
    }

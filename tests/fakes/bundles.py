"""Port bundles made of the in-memory fakes: ``loop_ports(tmp_path, episodes=…, …)`` for service tests.

Every port not given is a fresh fake (the YAML agent registry, the rubric and the real o200k counter
stand in for themselves: they do no I/O). One place builds the whole set, so tests never write the
port list out again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.files.writer import LocalDatasetWriter
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.tokens import O200kTokenCounter
from lightning.ports.bundles import DatasetPorts, LabelingPorts, LoopPorts, PromotionPorts, TrainingPorts
from tests.fakes.chat import OneByOne
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.fakes.finetune import FakeFineTuneProvider
from tests.fakes.golden import InMemoryGoldenStore
from tests.fakes.models import InMemoryModelRegistry
from tests.fakes.queue import InMemoryQueue
from tests.fakes.rollout import RecordingDeployer, RecordingRollout
from tests.fakes.runs import InMemoryRunStore


class MemoryCursors:
    """The ``CursorStore`` port in memory."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def get(self, name: str) -> int:
        return self.positions.get(name, 0)

    def set(self, name: str, position: int) -> None:
        self.positions[name] = position


class NoChat(OneByOne):
    """A ``ChatModel`` for tests that must never reach a model."""

    def choose_tool(self, **_: object) -> Any:
        raise AssertionError("no model call was expected in this test")


def loop_ports(work_dir: Path, **given: Any) -> LoopPorts:
    """All the loop's ports: ``given`` ones (by port name: episodes, cursors, agents, evaluator, datasets,
    blobs, tokens, queue, runs, provider, models, chat, deployer, rollout, run_tool, golden), fakes for
    the rest."""
    known = {
        "episodes", "cursors", "agents", "evaluator", "datasets", "blobs", "tokens", "queue", "runs",
        "provider", "models", "chat", "deployer", "rollout", "run_tool", "golden",
    }  # fmt: skip
    unknown = set(given) - known
    if unknown:
        raise TypeError(f"unknown ports: {', '.join(sorted(unknown))}")
    p: dict[str, Any] = {
        "episodes": InMemoryEpisodeStore(),
        "cursors": MemoryCursors(),
        "agents": YamlAgentRegistry(),
        "evaluator": RubricEvaluator(),
        "datasets": InMemoryDatasetStore(),
        "blobs": InMemoryBlobStore(),
        "tokens": O200kTokenCounter(),
        "queue": InMemoryQueue(),
        "runs": InMemoryRunStore(),
        "provider": FakeFineTuneProvider(),
        "models": InMemoryModelRegistry(),
        "chat": NoChat(),
        "deployer": RecordingDeployer(),
        "rollout": RecordingRollout(),
        "run_tool": None,
        "golden": InMemoryGoldenStore(),
        **given,
    }
    return LoopPorts(
        labeling=LabelingPorts(episodes=p["episodes"], agents=p["agents"], evaluator=p["evaluator"]),
        datasets=DatasetPorts(
            agents=p["agents"],
            episodes=p["episodes"],
            datasets=p["datasets"],
            blobs=p["blobs"],
            tokens=p["tokens"],
            writer=LocalDatasetWriter(root=work_dir),
            queue=p["queue"],
            golden=p["golden"],
        ),
        training=TrainingPorts(
            runs=p["runs"], datasets=p["datasets"], blobs=p["blobs"], provider=p["provider"], queue=p["queue"]
        ),
        promotion=PromotionPorts(
            agents=p["agents"],
            models=p["models"],
            runs=p["runs"],
            datasets=p["datasets"],
            blobs=p["blobs"],
            episodes=p["episodes"],
            golden=p["golden"],
            chat=p["chat"],
            evaluator=p["evaluator"],
            deployer=p["deployer"],
            rollout=p["rollout"],
            run_tool=p["run_tool"],
        ),
        cursors=p["cursors"],
    )

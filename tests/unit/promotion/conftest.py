"""A small world for promotion unit tests: fakes of every port, labeled episodes, a dataset, a run,
and a scripted ChatModel whose models have known skills."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import QuerySample, generate_queries
from lightning.domain.dataset import DatasetManifest, RewardStats
from lightning.domain.episode import Action, Episode, Label, State
from lightning.domain.errors import TransientProviderError
from lightning.domain.training import TrainingRun
from lightning.ports.bundles import PromotionPorts
from lightning.ports.chat import ToolCallChoice
from lightning.ports.tools import ToolRunner
from lightning.services.promotion import PromotionPolicy
from tests.fakes.chat import OneByOne
from tests.fakes.datasets import InMemoryBlobStore, InMemoryDatasetStore
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.fakes.golden import InMemoryGoldenStore
from tests.fakes.models import InMemoryModelRegistry
from tests.fakes.rollout import RecordingDeployer, RecordingRollout
from tests.fakes.runs import InMemoryRunStore

AGENT = "autonomous-agent"
FT_MODEL = "ft:local-base:autonomous-agent:abc123"
TOOLS = ["analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast"]


class ScriptedChat(OneByOne):
    """Answers from ground truth with a per-model skill: ``wrong_every`` k → every k-th answer uses the
    next tool over; ``down`` → the call fails; unknown models answer correctly."""

    def __init__(self, truth: dict[str, QuerySample]) -> None:
        self.truth = truth
        self.wrong_every: dict[str, int] = {}
        self.no_tool_every: dict[str, int] = {}
        self.down: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self._counter: dict[str, itertools.count[int]] = {}

    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice:
        assert system_prompt, "the agent's system prompt is sent"
        assert tools, "the agent's tools are sent"
        self.calls.append((model, query))
        if model in self.down:
            raise TransientProviderError(f"model {model} unreachable", provider="chat")
        n = next(self._counter.setdefault(model, itertools.count(1)))
        sample = self.truth[query]
        if self.no_tool_every.get(model) and n % self.no_tool_every[model] == 0:
            return ToolCallChoice(model=model, tool=None, content="I cannot help with that")
        if self.wrong_every.get(model) and n % self.wrong_every[model] == 0:
            wrong = TOOLS[(TOOLS.index(sample.tool) + 1) % len(TOOLS)]
            return ToolCallChoice(model=model, tool=wrong, arguments={})
        return ToolCallChoice(model=model, tool=sample.tool, arguments=dict(sample.arguments))


def episode_for(sample: QuerySample, index: int, *, reward: float = 0.95) -> Episode:
    label = Label(source="auto", score=reward, reason="rubric", expected_tool=sample.tool, tool_correct=True)
    return Episode(
        id=f"ep-{index:04d}",
        agent_id=AGENT,
        state=State(query=sample.query),
        action=Action(tool=sample.tool, arguments=dict(sample.arguments)),
        result={"ok": True},
        reward=reward,
        labeled=True,
        label=label,
    )


def make_run(model: str = FT_MODEL, *, state: str = "succeeded", run_id: str = "run-1") -> TrainingRun:
    return TrainingRun(
        id=run_id,
        agent_id=AGENT,
        dataset_name="autonomous-agent-v1",
        dataset_sha256="sha-of-files",
        base_model="local-base",
        provider="local",
        idempotency_key=f"key-{run_id}",
        state=state,  # type: ignore[arg-type]
        job_id=f"ftjob-{run_id}",
        fine_tuned_model=model if state == "succeeded" else None,
    )


@dataclass
class World:
    samples: list[QuerySample]
    chat: ScriptedChat
    episodes: InMemoryEpisodeStore
    datasets: InMemoryDatasetStore
    runs: InMemoryRunStore
    models: InMemoryModelRegistry = field(default_factory=InMemoryModelRegistry)
    deployer: RecordingDeployer = field(default_factory=lambda: RecordingDeployer(served_as_is=True))
    rollout: RecordingRollout = field(default_factory=RecordingRollout)
    agents: YamlAgentRegistry = field(default_factory=YamlAgentRegistry)
    evaluator: RubricEvaluator = field(default_factory=RubricEvaluator)
    policy: PromotionPolicy = field(
        default_factory=lambda: PromotionPolicy(tolerance=0.02, recent_episodes=20)
    )
    run_tool: ToolRunner | None = None
    golden: InMemoryGoldenStore = field(default_factory=InMemoryGoldenStore)
    blobs: InMemoryBlobStore = field(default_factory=InMemoryBlobStore)

    def ports(self) -> PromotionPorts:
        return PromotionPorts(
            agents=self.agents,
            models=self.models,
            runs=self.runs,
            datasets=self.datasets,
            blobs=self.blobs,
            episodes=self.episodes,
            golden=self.golden,
            chat=self.chat,
            evaluator=self.evaluator,
            deployer=self.deployer,
            rollout=self.rollout,
            run_tool=self.run_tool,
        )

    def args(self) -> tuple[PromotionPorts, PromotionPolicy]:
        """``(ports, policy)``, the last two arguments of every promotion use case."""
        return self.ports(), self.policy


@pytest.fixture
def world() -> World:
    """60 labeled episodes: 30 trained on, 10 in the validation split, 20 recent ones never used."""
    samples = generate_queries(60, seed=7)
    # Queries are the chat's lookup key: keep the first sample of each distinct query.
    truth: dict[str, QuerySample] = {}
    for sample in samples:
        truth.setdefault(sample.query, sample)
    episodes = [episode_for(truth[s.query], i) for i, s in enumerate(samples)]
    manifest = DatasetManifest(
        name="autonomous-agent-v1",
        agent_id=AGENT,
        episode_ids=[e.id for e in episodes[:30]],
        validation_episode_ids=[e.id for e in episodes[30:40]],
        content_sha256="sha-of-files",
        reward=RewardStats(avg=0.95, min=0.95, max=0.95),
        token_count=1234,
    )
    datasets = InMemoryDatasetStore()
    datasets.put(manifest)
    runs = InMemoryRunStore()
    runs.create_or_get(make_run())
    return World(
        samples=samples,
        chat=ScriptedChat(truth),
        episodes=InMemoryEpisodeStore(episodes),
        datasets=datasets,
        runs=runs,
    )

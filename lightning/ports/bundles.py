"""Port bundles: the ports each group of use cases needs, as one frozen value.

Use cases take ``(command_or_message, ports, policy)``, as the cosmicpython handlers do, so a port list
is written once — here — and built once, by the composition root (``lightning.bootstrap.Container``).
Tests build them from the fakes in ``tests/fakes``. ``LoopPorts`` is the union the hands-off loop
needs (both hosts: the Functions app and ``run-loop``), made of the other bundles.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning.ports.agents import AgentRegistry
from lightning.ports.chat import ChatModel
from lightning.ports.clock import Clock
from lightning.ports.cursors import CursorStore
from lightning.ports.datasets import BlobStore, DatasetStore
from lightning.ports.deploy import ModelDeployer
from lightning.ports.episodes import EpisodeStore
from lightning.ports.evaluator import Evaluator
from lightning.ports.finetune import FineTuneProvider
from lightning.ports.golden import GoldenStore
from lightning.ports.models import ModelRegistry
from lightning.ports.queue import Queue
from lightning.ports.rollout import AgentRollout
from lightning.ports.runs import RunStore
from lightning.ports.tokens import TokenCounter
from lightning.ports.tools import ToolRunner
from lightning.ports.writer import DatasetWriter


@dataclass(frozen=True, kw_only=True)
class LabelingPorts:
    """Auto-labeling: ``label_batch`` and the change-feed step ``label_new_episodes``."""

    episodes: EpisodeStore
    agents: AgentRegistry
    evaluator: Evaluator


@dataclass(frozen=True, kw_only=True)
class DatasetPorts:
    """Dataset builds: ``build_dataset`` and the timer step ``build_datasets_when_ready`` (which queues,
    and asks the judge report whether auto labels can still be trusted)."""

    agents: AgentRegistry
    episodes: EpisodeStore
    datasets: DatasetStore
    blobs: BlobStore
    tokens: TokenCounter
    writer: DatasetWriter
    queue: Queue
    golden: GoldenStore


@dataclass(frozen=True, kw_only=True)
class TrainingPorts:
    """Fine-tuning runs: ``start_training`` and the queue step ``start_or_poll_fine_tune``."""

    runs: RunStore
    datasets: DatasetStore
    blobs: BlobStore
    provider: FineTuneProvider
    queue: Queue


@dataclass(frozen=True, kw_only=True)
class EvaluationPorts:
    """Replaying requests against models and scoring the answers (``evaluate``, the promotion gate)."""

    chat: ChatModel
    evaluator: Evaluator
    run_tool: ToolRunner | None = None  # runs the chosen tool so the judge sees a result; None: not run
    clock: Clock | None = None  # measures a time budget; None: the system clock


@dataclass(frozen=True, kw_only=True)
class PromotionPorts:
    """Promotion and rollback: register → deploy → gate → roll out → activate."""

    agents: AgentRegistry
    models: ModelRegistry
    runs: RunStore
    datasets: DatasetStore
    blobs: BlobStore
    episodes: EpisodeStore
    golden: GoldenStore
    chat: ChatModel
    evaluator: Evaluator
    deployer: ModelDeployer
    rollout: AgentRollout
    run_tool: ToolRunner | None = None
    clock: Clock | None = None  # measures the gate's time budget; None: the system clock

    @property
    def evaluation(self) -> EvaluationPorts:
        """The part the gate's replay uses."""
        return EvaluationPorts(
            chat=self.chat, evaluator=self.evaluator, run_tool=self.run_tool, clock=self.clock
        )


@dataclass(frozen=True, kw_only=True)
class StatusPorts:
    """What the loop's status page reads (``GET /api/status``, the console, the demo report)."""

    agents: AgentRegistry
    episodes: EpisodeStore
    golden: GoldenStore
    datasets: DatasetStore
    runs: RunStore
    models: ModelRegistry


@dataclass(frozen=True, kw_only=True)
class LoopPorts:
    """Everything the hands-off loop needs: one bundle per step, plus the change-feed cursor."""

    labeling: LabelingPorts
    datasets: DatasetPorts
    training: TrainingPorts
    promotion: PromotionPorts
    cursors: CursorStore

    @property
    def queue(self) -> Queue:
        return self.training.queue

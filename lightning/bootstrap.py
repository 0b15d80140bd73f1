"""The composition root: builds adapters from ``Settings``, lazily, in one place.

Entry points (CLI, Functions, agent, local loop) ask a ``Container`` for the
ports they need. Adapters are imported only when first used, so importing an
entry point never touches an SDK or the network. Each adapter builds itself
with ``from_settings(settings)``.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from lightning.config import Settings, get_settings
from lightning.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from lightning.ports.agents import AgentRegistry
    from lightning.ports.bundles import (
        DatasetPorts,
        LabelingPorts,
        LoopPorts,
        PromotionPorts,
        StatusPorts,
        TrainingPorts,
    )
    from lightning.ports.chat import ChatModel
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
    from lightning.services.calibration import CalibrationPolicy
    from lightning.services.loop import LoopPolicy
    from lightning.services.promotion import PromotionPolicy
    from lightning.services.training import TrainingPolicy


def _build(path: str, settings: Settings, **kwargs: Any) -> Any:  # the port type is declared by the caller
    module_name, _, class_name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_settings(settings, **kwargs)


class Container:
    """Ports wired from settings; each built once, on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    @property
    def _cosmos(self) -> bool:
        store = self.settings.lightning_store
        if store == "cosmos":
            return True
        if store.startswith("sqlite:///"):
            return False
        raise ConfigurationError(f"LIGHTNING_STORE must be sqlite:///PATH or cosmos, got {store!r}")

    def _store(self, sqlite_path: str, cosmos_path: str) -> Any:
        return _build(cosmos_path if self._cosmos else sqlite_path, self.settings)

    @cached_property
    def episodes(self) -> EpisodeStore:
        return cast(
            "EpisodeStore",
            self._store(
                "lightning.adapters.sqlite.episodes.SqliteEpisodeStore",
                "lightning.adapters.cosmos.episodes.CosmosEpisodeStore",
            ),
        )

    @cached_property
    def datasets(self) -> DatasetStore:
        return cast(
            "DatasetStore",
            self._store(
                "lightning.adapters.sqlite.datasets.SqliteDatasetStore",
                "lightning.adapters.cosmos.datasets.CosmosDatasetStore",
            ),
        )

    @cached_property
    def runs(self) -> RunStore:
        return cast(
            "RunStore",
            self._store(
                "lightning.adapters.sqlite.runs.SqliteRunStore",
                "lightning.adapters.cosmos.runs.CosmosRunStore",
            ),
        )

    @cached_property
    def models(self) -> ModelRegistry:
        return cast(
            "ModelRegistry",
            self._store(
                "lightning.adapters.sqlite.models.SqliteModelRegistry",
                "lightning.adapters.cosmos.models.CosmosModelRegistry",
            ),
        )

    @cached_property
    def golden(self) -> GoldenStore:
        return cast(
            "GoldenStore",
            self._store(
                "lightning.adapters.sqlite.golden.SqliteGoldenStore",
                "lightning.adapters.cosmos.golden.CosmosGoldenStore",
            ),
        )

    @cached_property
    def cursors(self) -> CursorStore:
        """Local-loop positions; kept in the embedded store even when episodes live in Cosmos."""
        return cast(
            "CursorStore", _build("lightning.adapters.sqlite.cursors.SqliteCursorStore", self.settings)
        )

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.lightning_blob == "azure":
            return cast("BlobStore", _build("lightning.adapters.blob.azure.AzureBlobStore", self.settings))
        return cast("BlobStore", _build("lightning.adapters.blob.local.LocalBlobStore", self.settings))

    @cached_property
    def queue(self) -> Queue:
        if self.settings.lightning_queue == "servicebus":
            return cast("Queue", _build("lightning.adapters.servicebus.queue.ServiceBusQueue", self.settings))
        return cast("Queue", _build("lightning.adapters.sqlite.queue.SqliteQueue", self.settings))

    @cached_property
    def agents(self) -> AgentRegistry:
        return cast(
            "AgentRegistry",
            _build("lightning.adapters.registry.yaml_registry.YamlAgentRegistry", self.settings),
        )

    def evaluator(self, name: str | None = None, *, concurrency: int | None = None) -> Evaluator:
        """``task_adherence`` uses the judge when one is configured, the rubric otherwise; ``rubric`` forces it.
        ``concurrency`` bounds the judge's parallel calls (default 8; the rubric runs inline)."""
        name = name or self.settings.lightning_evaluator
        if name not in {"task_adherence", "rubric"}:
            from lightning.domain.errors import InvalidInput

            raise InvalidInput(
                f"unknown evaluator {name!r}; choose task_adherence or rubric", field="evaluator"
            )
        judge = self.settings.azure_openai_endpoint and self.settings.azure_openai_judge_deployment
        if name == "task_adherence" and judge:
            options = {"max_concurrency": concurrency} if concurrency is not None else {}
            return cast(
                "Evaluator",
                _build("lightning.adapters.evaluators.judge.TaskAdherenceJudge", self.settings, **options),
            )
        return cast(
            "Evaluator", _build("lightning.adapters.evaluators.rubric.RubricEvaluator", self.settings)
        )

    @cached_property
    def fine_tuning(self) -> FineTuneProvider:
        return cast(
            "FineTuneProvider",
            _build("lightning.adapters.openai.finetune.OpenAIFineTuneProvider", self.settings),
        )

    @cached_property
    def tokens(self) -> TokenCounter:
        return cast("TokenCounter", _build("lightning.adapters.tokens.O200kTokenCounter", self.settings))

    @cached_property
    def chat(self) -> ChatModel:
        return cast("ChatModel", _build("lightning.adapters.openai.chat.OpenAIChatModel", self.settings))

    @cached_property
    def deployer(self) -> ModelDeployer:
        if self.settings.trainer == "azure-openai":
            return cast(
                "ModelDeployer",
                _build("lightning.adapters.azure_openai.deployments.AzureOpenAIDeployer", self.settings),
            )
        return cast(
            "ModelDeployer",
            _build("lightning.adapters.azure_openai.deployments.ServedAsIsDeployer", self.settings),
        )

    @cached_property
    def rollout(self) -> AgentRollout:
        return cast(
            "AgentRollout", _build("lightning.adapters.kubernetes.rollout.KubernetesRollout", self.settings)
        )

    def tool_runner(self) -> ToolRunner | None:
        """The reference agent's tools, when that package is installed, so evaluations include results."""
        try:
            from lightning.agent.tools import run_tool
        except ImportError:
            return None
        return run_tool

    @cached_property
    def writer(self) -> DatasetWriter:
        from lightning.adapters.files.writer import LocalDatasetWriter

        return LocalDatasetWriter(root=self.settings.datasets_dir / ".work")

    # --- port bundles: each use case's ports, written once ---------------------------------------
    def labeling_ports(
        self, evaluator: str | None = None, *, concurrency: int | None = None
    ) -> LabelingPorts:
        from lightning.ports.bundles import LabelingPorts

        return LabelingPorts(
            episodes=self.episodes,
            agents=self.agents,
            evaluator=self.evaluator(evaluator, concurrency=concurrency),
        )

    def dataset_ports(self) -> DatasetPorts:
        from lightning.ports.bundles import DatasetPorts

        return DatasetPorts(
            agents=self.agents,
            episodes=self.episodes,
            datasets=self.datasets,
            blobs=self.blobs,
            tokens=self.tokens,
            writer=self.writer,
            queue=self.queue,
            golden=self.golden,
        )

    def training_ports(self) -> TrainingPorts:
        from lightning.ports.bundles import TrainingPorts

        return TrainingPorts(
            runs=self.runs,
            datasets=self.datasets,
            blobs=self.blobs,
            provider=self.fine_tuning,
            queue=self.queue,
        )

    def promotion_ports(self, evaluator: str | None = None) -> PromotionPorts:
        from lightning.ports.bundles import PromotionPorts

        return PromotionPorts(
            agents=self.agents,
            models=self.models,
            runs=self.runs,
            datasets=self.datasets,
            blobs=self.blobs,
            episodes=self.episodes,
            golden=self.golden,
            chat=self.chat,
            evaluator=self.evaluator(evaluator),
            deployer=self.deployer,
            rollout=self.rollout,
            run_tool=self.tool_runner(),
        )

    def status_ports(self) -> StatusPorts:
        from lightning.ports.bundles import StatusPorts

        return StatusPorts(
            agents=self.agents,
            episodes=self.episodes,
            golden=self.golden,
            datasets=self.datasets,
            runs=self.runs,
            models=self.models,
        )

    def loop_ports(self, evaluator: str | None = None) -> LoopPorts:
        """The ports of the loop steps; both hosts (Functions, run-loop) wire them here."""
        from lightning.ports.bundles import LoopPorts

        return LoopPorts(
            labeling=self.labeling_ports(evaluator),
            datasets=self.dataset_ports(),
            training=self.training_ports(),
            promotion=self.promotion_ports(evaluator),
            cursors=self.cursors,
        )


# --- policies: settings become policies here, and only here ---------------------------------------
def promotion_policy(settings: Settings) -> PromotionPolicy:
    """Tolerance, recent episodes, the base model agents fall back to (``AZURE_OPENAI_DEPLOYMENT`` on
    Azure, ``BASE_MODEL`` otherwise), rollout on/off, and ``K8S_NAMESPACE`` when it was set explicitly
    (else each agent definition's namespace)."""
    from lightning.services.promotion import PromotionPolicy

    base = (
        settings.azure_openai_deployment
        if settings.lightning_trainer == "azure-openai"
        else settings.base_model or "local-base"
    )
    return PromotionPolicy(
        tolerance=settings.promotion_tolerance,
        recent_episodes=settings.gate_recent_episodes,
        min_golden=settings.gate_min_golden,
        max_requests=settings.gate_max_requests,
        time_budget_seconds=settings.gate_budget_seconds,
        min_replayed=settings.gate_min_replayed,
        max_judge_failure_rate=settings.gate_max_judge_failure_rate,
        min_reward=settings.dataset_min_reward,
        base_model=base,
        rollout_enabled=settings.rollout_enabled,
        namespace=settings.k8s_namespace if "k8s_namespace" in settings.model_fields_set else None,
    )


def training_policy(settings: Settings, *, poll_seconds: float | None = None) -> TrainingPolicy:
    from lightning.services.training import TrainingPolicy

    return TrainingPolicy(
        poll_seconds=poll_seconds if poll_seconds is not None else settings.fine_tune_poll_seconds,
        default_base_model=settings.base_model or "local-base",
        default_epochs=settings.training_epochs,
        work_dir=settings.datasets_dir / ".work",
    )


def calibration_policy(settings: Settings) -> CalibrationPolicy:
    """The judge's accept line and trust floor (DATASET_MIN_REWARD, JUDGE_MIN_PRECISION, JUDGE_MIN_COMPARED)."""
    from lightning.services.calibration import CalibrationPolicy

    return CalibrationPolicy(
        min_reward=settings.dataset_min_reward,
        min_precision=settings.judge_min_precision,
        min_compared=settings.judge_min_compared,
    )


def loop_policy(
    settings: Settings, *, poll_seconds: float | None = None, dataset_interval: float | None = None
) -> LoopPolicy:
    """The loop's knobs from settings; both hosts read them the same way."""
    from lightning.services.datasets import DatasetPolicy
    from lightning.services.labeling import LabelingPolicy
    from lightning.services.loop import LoopPolicy

    return LoopPolicy(
        labeling=LabelingPolicy(min_score=settings.dataset_min_reward),
        datasets=DatasetPolicy(
            min_episodes=settings.dataset_min_episodes,
            min_reward=settings.dataset_min_reward,
            min_hours_between=settings.dataset_min_hours_between,
            base_model=settings.base_model,
            calibration=calibration_policy(settings),
        ),
        training=training_policy(settings, poll_seconds=poll_seconds),
        promotion=promotion_policy(settings),
        dataset_interval_seconds=dataset_interval if dataset_interval is not None else 1800.0,
        visibility_timeout=settings.queue_visibility_timeout_seconds,
    )

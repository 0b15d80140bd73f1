"""The composition root: the one module that reads ``Settings`` and builds adapters from them.

Entry points (CLI, Functions, console, local loop) ask a ``Container`` for the ports they need, and the
module-level functions below for policies. The agent pod's own wiring (the agent, its episode capture,
its API keys) is ``lightning.bootstrap_agent``: kept apart so that the Function App, which deploys this
module, never reaches the agent's server and telemetry packages (``tests/unit/infra`` walks the imports). Adapters know nothing of settings: each takes explicit keyword arguments, and this module
maps settings onto them. Every factory imports its adapter by name inside the function, so importing
an entry point never touches an SDK or the network, and a wrong name or argument is an import or mypy
error rather than a surprise at run time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lightning.config import Settings, get_settings
from lightning.domain.errors import ConfigurationError, InvalidInput

if TYPE_CHECKING:
    from lightning.adapters.azure_openai.deployments import AzureOpenAIDeployer
    from lightning.adapters.blob.azure import AzureBlobStore
    from lightning.adapters.cosmos.client import CosmosAccount
    from lightning.adapters.evaluators.judge import TaskAdherenceJudge
    from lightning.adapters.openai.client import OpenAIEndpoint
    from lightning.adapters.servicebus.queue import ServiceBusQueue
    from lightning.ports.agents import AgentRegistry
    from lightning.ports.bundles import (
        DatasetPorts,
        EvaluationPorts,
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

    @cached_property
    def _account(self) -> CosmosAccount:
        return cosmos_account(self.settings)

    # --- stores: SQLite (LIGHTNING_STORE=sqlite:///PATH) or Cosmos DB (LIGHTNING_STORE=cosmos) ---------
    @cached_property
    def episodes(self) -> EpisodeStore:
        if self._cosmos:
            from lightning.adapters.cosmos.episodes import CosmosEpisodeStore

            return CosmosEpisodeStore.in_account(self._account)
        from lightning.adapters.sqlite.episodes import SqliteEpisodeStore

        return SqliteEpisodeStore.at(self.settings.sqlite_path)

    @cached_property
    def datasets(self) -> DatasetStore:
        if self._cosmos:
            from lightning.adapters.cosmos.datasets import CosmosDatasetStore

            return CosmosDatasetStore.in_account(self._account)
        from lightning.adapters.sqlite.datasets import SqliteDatasetStore

        return SqliteDatasetStore.at(self.settings.sqlite_path)

    @cached_property
    def runs(self) -> RunStore:
        if self._cosmos:
            from lightning.adapters.cosmos.runs import CosmosRunStore

            return CosmosRunStore.in_account(self._account)
        from lightning.adapters.sqlite.runs import SqliteRunStore

        return SqliteRunStore.at(self.settings.sqlite_path)

    @cached_property
    def models(self) -> ModelRegistry:
        if self._cosmos:
            from lightning.adapters.cosmos.models import CosmosModelRegistry

            return CosmosModelRegistry.in_account(self._account)
        from lightning.adapters.sqlite.models import SqliteModelRegistry

        return SqliteModelRegistry.at(self.settings.sqlite_path)

    @cached_property
    def golden(self) -> GoldenStore:
        if self._cosmos:
            from lightning.adapters.cosmos.golden import CosmosGoldenStore

            return CosmosGoldenStore.in_account(self._account)
        from lightning.adapters.sqlite.golden import SqliteGoldenStore

        return SqliteGoldenStore.at(self.settings.sqlite_path)

    @cached_property
    def cursors(self) -> CursorStore:
        """Local-loop positions; kept in the embedded store even when episodes live in Cosmos."""
        from lightning.adapters.sqlite.cursors import SqliteCursorStore

        return SqliteCursorStore.at(self.settings.embedded_db_path)

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.lightning_blob == "azure":
            return azure_blob_store(self.settings)
        from lightning.adapters.blob.local import LocalBlobStore

        return LocalBlobStore(self.settings.datasets_dir)

    @cached_property
    def queue(self) -> Queue:
        if self.settings.lightning_queue == "servicebus":
            return servicebus_queue(self.settings)
        from lightning.adapters.sqlite.db import shared_database
        from lightning.adapters.sqlite.queue import SqliteQueue

        return SqliteQueue(
            shared_database(self.settings.embedded_db_path),
            max_delivery_count=self.settings.queue_max_delivery_count,
        )

    @cached_property
    def agents(self) -> AgentRegistry:
        from lightning.adapters.registry.yaml_registry import YamlAgentRegistry

        return YamlAgentRegistry(extra_dir=self.settings.lightning_agents_dir)

    def evaluator(self, name: str | None = None, *, concurrency: int | None = None) -> Evaluator:
        """``task_adherence`` uses the judge when one is configured, the rubric otherwise; ``rubric`` forces it.
        ``concurrency`` bounds the judge's parallel calls (default 8; the rubric runs inline)."""
        name = name or self.settings.lightning_evaluator
        if name not in {"task_adherence", "rubric"}:
            raise InvalidInput(
                f"unknown evaluator {name!r}; choose task_adherence or rubric", field="evaluator"
            )
        judge = self.settings.azure_openai_endpoint and self.settings.azure_openai_judge_deployment
        if name == "task_adherence" and judge:
            return task_adherence_judge(
                self.settings, max_concurrency=8 if concurrency is None else concurrency
            )
        from lightning.adapters.evaluators.rubric import RubricEvaluator

        return RubricEvaluator()

    # --- models: fine-tuning, chat, deployment, rollout ----------------------------------------------
    @cached_property
    def fine_tuning(self) -> FineTuneProvider:
        from lightning.adapters.openai.finetune import OpenAIFineTuneProvider

        return OpenAIFineTuneProvider.connect(openai_endpoint(self.settings))

    @cached_property
    def tokens(self) -> TokenCounter:
        from lightning.adapters.tokens import O200kTokenCounter

        return O200kTokenCounter()  # every supported base model counts with o200k_base

    @cached_property
    def chat(self) -> ChatModel:
        from lightning.adapters.openai.chat import OpenAIChatModel

        return OpenAIChatModel.connect(openai_endpoint(self.settings))

    @cached_property
    def deployer(self) -> ModelDeployer:
        if self.settings.trainer == "azure-openai":
            return azure_openai_deployer(self.settings)
        from lightning.adapters.azure_openai.deployments import ServedAsIsDeployer
        from lightning.adapters.openai.client import make_openai_client

        return ServedAsIsDeployer(client=make_openai_client(openai_endpoint(self.settings), max_retries=2))

    @cached_property
    def rollout(self) -> AgentRollout:
        return kubernetes_rollout(self.settings)

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

    def evaluation_ports(self, evaluator: str | None = None) -> EvaluationPorts:
        from lightning.ports.bundles import EvaluationPorts

        return EvaluationPorts(
            chat=self.chat, evaluator=self.evaluator(evaluator), run_tool=self.tool_runner()
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


# --- settings → adapter arguments (the Container uses these; tests and tools may too) -------------------
def cosmos_account(settings: Settings) -> CosmosAccount:
    """``COSMOS_ENDPOINT``, ``COSMOS_DATABASE``; ``COSMOS_KEY`` and ``COSMOS_VERIFY_TLS`` for an emulator."""
    from lightning.adapters.cosmos.client import CosmosAccount

    if not settings.cosmos_endpoint:
        raise ConfigurationError(
            "LIGHTNING_STORE=cosmos needs COSMOS_ENDPOINT (https://<account>.documents.azure.com:443/)"
        )
    return CosmosAccount(
        endpoint=settings.cosmos_endpoint,
        database=settings.cosmos_database,
        key=settings.cosmos_key.get_secret_value() or None if settings.cosmos_key else None,
        verify_tls=settings.cosmos_verify_tls,
    )


def openai_endpoint(settings: Settings) -> OpenAIEndpoint:
    """Where ``LIGHTNING_TRAINER`` points the ``openai`` SDK: the local model server
    (``LIGHTNING_MODEL_SERVER``), OpenAI (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) or Azure OpenAI
    (``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_VERSION``, Entra ID)."""
    from lightning.adapters.openai.client import OpenAIEndpoint

    kind = settings.trainer
    if kind == "local":
        return OpenAIEndpoint(provider="local", base_url=settings.lightning_model_server)
    if kind == "openai":
        if settings.openai_api_key is None:
            raise ConfigurationError("LIGHTNING_TRAINER=openai needs OPENAI_API_KEY")
        return OpenAIEndpoint(
            provider="openai",
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
        )
    if not settings.azure_openai_endpoint:
        raise ConfigurationError("LIGHTNING_TRAINER=azure-openai needs AZURE_OPENAI_ENDPOINT")
    return OpenAIEndpoint(
        provider="azure-openai",
        base_url=settings.azure_openai_endpoint,
        api_version=settings.azure_openai_api_version,
    )


def servicebus_queue(settings: Settings) -> ServiceBusQueue:
    """``SERVICEBUS_NAMESPACE`` with Entra ID; ``SERVICEBUS_CONNECTION_STRING`` for the emulator only."""
    from lightning.adapters.servicebus.queue import ServiceBusQueue

    if settings.servicebus_connection_string is not None:
        return ServiceBusQueue.from_connection_string(
            settings.servicebus_connection_string.get_secret_value()
        )
    if not settings.servicebus_namespace:
        raise ConfigurationError(
            "LIGHTNING_QUEUE=servicebus needs SERVICEBUS_NAMESPACE (e.g. myns.servicebus.windows.net)"
        )
    return ServiceBusQueue.on_namespace(settings.servicebus_namespace)


def azure_blob_store(settings: Settings) -> AzureBlobStore:
    """``AZURE_STORAGE_ACCOUNT_URL`` with Entra ID; ``AZURE_STORAGE_CONNECTION_STRING`` for Azurite only."""
    from lightning.adapters.blob.azure import AzureBlobStore

    container = settings.datasets_container
    if settings.azure_storage_connection_string is not None:
        secret = settings.azure_storage_connection_string.get_secret_value()
        return AzureBlobStore.from_connection_string(secret, container=container)
    if settings.azure_storage_account_url:
        return AzureBlobStore.on_account(settings.azure_storage_account_url, container=container)
    raise ConfigurationError(
        "LIGHTNING_BLOB=azure needs AZURE_STORAGE_ACCOUNT_URL (https://<account>.blob.core.windows.net; "
        "Entra ID auth) or, for Azurite only, AZURE_STORAGE_CONNECTION_STRING"
    )


def task_adherence_judge(
    settings: Settings, *, credential: Any | None = None, max_concurrency: int = 8
) -> TaskAdherenceJudge:
    """The judge on ``AZURE_OPENAI_JUDGE_DEPLOYMENT`` at ``AZURE_OPENAI_ENDPOINT``."""
    from lightning.adapters.evaluators.judge import TaskAdherenceJudge

    if not settings.azure_openai_endpoint or not settings.azure_openai_judge_deployment:
        raise ConfigurationError(
            "the task_adherence judge needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_JUDGE_DEPLOYMENT; "
            "unset both to use the rubric evaluator"
        )
    return TaskAdherenceJudge(
        endpoint=settings.azure_openai_endpoint,
        deployment=settings.azure_openai_judge_deployment,
        api_version=settings.azure_openai_api_version,
        credential=credential,
        max_concurrency=max_concurrency,
    )


def azure_openai_deployer(
    settings: Settings, *, credential: Any = None, **client_kwargs: Any
) -> AzureOpenAIDeployer:
    """Deployments on ``AZURE_OPENAI_ACCOUNT`` (``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
    ``AZURE_MANAGEMENT_ENDPOINT``, ``DEPLOYMENT_SKU``, ``DEPLOYMENT_CAPACITY``); ``client_kwargs`` go to
    the SDK client (e.g. ``connection_verify`` for a private CA)."""
    from lightning.adapters.azure_openai.deployments import AzureOpenAIDeployer

    subscription, group, account = (
        settings.azure_subscription_id,
        settings.azure_resource_group,
        settings.azure_openai_account,
    )
    if not subscription or not group or not account:
        missing = [
            name
            for name, value in (
                ("AZURE_SUBSCRIPTION_ID", subscription),
                ("AZURE_RESOURCE_GROUP", group),
                ("AZURE_OPENAI_ACCOUNT", account),
            )
            if not value
        ]
        raise ConfigurationError(
            f"deploying fine-tuned models to Azure OpenAI needs {', '.join(missing)} "
            "(the account's subscription, resource group and name)"
        )
    return AzureOpenAIDeployer.connect(
        subscription_id=subscription,
        resource_group=group,
        account=account,
        management_endpoint=settings.azure_management_endpoint,
        sku=settings.deployment_sku,
        capacity=settings.deployment_capacity,
        credential=credential,
        **client_kwargs,
    )


def kubernetes_rollout(
    settings: Settings,
    *,
    credential: Any = None,
    poll_interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> AgentRollout:
    """The cluster from ``K8S_API_SERVER`` (+ ``K8S_CA_CERT_DATA``), ``KUBECONFIG`` or in-cluster config,
    with ``K8S_USE_AKS_TOKEN`` and ``ROLLOUT_TIMEOUT_SECONDS``; a ``LocalRollout`` when there is none."""
    from lightning.adapters.kubernetes.rollout import KubernetesRollout

    return KubernetesRollout.connect(
        api_server=settings.k8s_api_server,
        ca_cert_data=settings.k8s_ca_cert_data,
        kubeconfig=settings.kubeconfig,
        use_aks_token=settings.k8s_use_aks_token,
        timeout=settings.rollout_timeout_seconds,
        credential=credential,
        poll_interval=poll_interval,
        sleep=sleep,
        monotonic=monotonic,
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

"""Settings: every knob, read from the environment or ``.env`` (pydantic-settings).

Environment variable names are the field names in upper case (``LIGHTNING_HOME``,
``COSMOS_ENDPOINT`` …). Secrets are ``SecretStr`` and never printed; Azure
access uses ``DefaultAzureCredential`` — keys are accepted only for local
emulators. Nothing is read at import time: call ``get_settings()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TrainerKind = Literal["local", "azure-openai", "openai"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- local state -------------------------------------------------------------------------
    lightning_home: Path = Field(default=Path(".lightning"), description="All local state lives here.")
    lightning_store: str = Field(
        default="", description="sqlite:///PATH (default under LIGHTNING_HOME) or cosmos"
    )
    lightning_queue: Literal["sqlite", "servicebus"] = "sqlite"
    lightning_blob: Literal["local", "azure"] = "local"
    lightning_trainer: TrainerKind | None = Field(
        default=None, description="local unless AZURE_OPENAI_ENDPOINT is set (then azure-openai)"
    )
    lightning_model_server: str = "http://127.0.0.1:8700/v1"
    lightning_agents_dir: Path | None = Field(default=None, description="Extra agent definitions (*.yaml).")
    lightning_evaluator: str = "task_adherence"
    lightning_user: str | None = Field(default=None, description="Name recorded on human labels.")
    lightning_console_token: SecretStr | None = Field(
        default=None,
        description="serve-console's bearer token(s): name:secret[,name:secret…] (the name is labeled_by).",
    )

    # --- Cosmos DB ---------------------------------------------------------------------------
    cosmos_endpoint: str | None = None
    cosmos_database: str = "agents"
    cosmos_key: SecretStr | None = Field(default=None, description="Emulator only; Azure uses Entra ID.")
    cosmos_verify_tls: bool = True

    # --- Blob storage ------------------------------------------------------------------------
    azure_storage_account_url: str | None = None
    azure_storage_connection_string: SecretStr | None = Field(default=None, description="Azurite only.")
    datasets_container: str = "datasets"

    # --- Service Bus -------------------------------------------------------------------------
    servicebus_namespace: str | None = Field(default=None, description="e.g. myns.servicebus.windows.net")
    servicebus_connection_string: SecretStr | None = Field(default=None, description="Emulator only.")
    queue_max_delivery_count: int = Field(default=5, ge=1)
    queue_visibility_timeout_seconds: float = Field(default=300.0, gt=0)

    # --- Azure OpenAI / OpenAI ---------------------------------------------------------------
    azure_openai_endpoint: str | None = None
    azure_openai_api_version: str = "2025-04-01-preview"
    azure_openai_deployment: str = Field(default="gpt-4o-mini", description="Base deployment agents call.")
    azure_openai_judge_deployment: str | None = Field(default=None, description="Judge for task_adherence.")
    openai_api_key: SecretStr | None = Field(default=None, description="Only for LIGHTNING_TRAINER=openai.")
    openai_base_url: str | None = None
    base_model: str | None = Field(default=None, description="Default base model: local-base or gpt-4o-mini.")

    # --- Azure OpenAI deployments (management plane) ------------------------------------------
    azure_subscription_id: str | None = None
    azure_resource_group: str | None = None
    azure_openai_account: str | None = Field(default=None, description="Cognitive Services account name.")
    azure_management_endpoint: str = "https://management.azure.com"
    deployment_sku: str = "Standard"
    deployment_capacity: int = Field(default=1, ge=1)

    # --- Kubernetes rollout ------------------------------------------------------------------
    k8s_namespace: str = "mcp-agents"
    k8s_api_server: str | None = Field(default=None, description="Override the API server URL.")
    k8s_ca_cert_data: str | None = Field(
        default=None,
        description="Base64 PEM of the API server's CA (kubeconfig's certificate-authority-data), with K8S_API_SERVER.",
    )
    kubeconfig: Path | None = None
    k8s_use_aks_token: bool = Field(default=False, description="Authenticate with an Entra ID token for AKS.")
    rollout_timeout_seconds: float = Field(
        default=300.0, gt=0, description="One rollout, restoring the previous env included."
    )
    rollout_enabled: bool = Field(default=True, description="Patch the agent Deployment after promotion.")

    # --- Promotion gate ----------------------------------------------------------------------
    promotion_tolerance: float = Field(default=0.02, ge=0, le=1)
    gate_recent_episodes: int = Field(default=200, ge=0)
    gate_min_golden: int = Field(
        default=30, ge=1, description="Golden examples needed for the gate to decide on ground truth."
    )
    gate_max_requests: int = Field(default=300, ge=1, description="Requests the gate replays per model.")
    gate_time_budget_seconds: float | None = Field(
        default=None,
        gt=0,
        description="The gate's replay + judging; default FUNCTION_TIMEOUT_SECONDS - ROLLOUT_TIMEOUT_SECONDS - 60.",
    )
    gate_min_replayed: float = Field(
        default=0.5, gt=0, le=1, description="Share of the gate's requests that must be replayed to decide."
    )
    gate_max_judge_failure_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of answers the judge may fail to score before the gate refuses.",
    )
    function_timeout_seconds: float = Field(
        default=600.0, gt=0, description="host.json functionTimeout: a promotion must fit in it."
    )

    # --- Ground truth ------------------------------------------------------------------------
    judge_min_precision: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Below this (over JUDGE_MIN_COMPARED), auto labels alone build nothing.",
    )
    judge_min_compared: int = Field(
        default=30,
        ge=1,
        description="Episodes with both a judge and a human/golden verdict needed to judge the judge.",
    )

    # --- Loop thresholds ---------------------------------------------------------------------
    dataset_min_episodes: int = Field(default=50, ge=10)
    dataset_min_reward: float = Field(default=0.7, ge=0, le=1)
    dataset_min_hours_between: float = Field(default=24.0, ge=0)
    dataset_timer_schedule: str = "0 */30 * * * *"
    fine_tune_poll_seconds: float = Field(default=60.0, gt=0)
    training_epochs: int | None = None

    # --- Agent (the workshop's env) ----------------------------------------------------------
    enable_episode_capture: bool = False
    use_tuned_model: bool = False
    tuned_model_name: str | None = None
    capture_batch_size: int = Field(default=500, ge=1)
    capture_flush_seconds: float = Field(default=0.5, gt=0)
    capture_max_result_chars: int = Field(default=8000, ge=100)
    applicationinsights_connection_string: SecretStr | None = None
    agent_api_key: SecretStr | None = Field(
        default=None, description="POST /message needs it (api-key header or Authorization: Bearer)."
    )
    agent_api_keys: SecretStr | None = Field(
        default=None, description="More accepted keys, comma-separated (rotation)."
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if not self.lightning_store:
            self.lightning_store = f"sqlite:///{self.lightning_home / 'lightning.db'}"
        if self.lightning_trainer is None:
            self.lightning_trainer = "azure-openai" if self.azure_openai_endpoint else "local"
        if self.base_model is None:
            self.base_model = "local-base" if self.lightning_trainer == "local" else "gpt-4o-mini"
        return self

    # --- derived paths -----------------------------------------------------------------------
    @property
    def trainer(self) -> TrainerKind:
        assert self.lightning_trainer is not None
        return self.lightning_trainer

    @property
    def sqlite_path(self) -> Path:
        if not self.lightning_store.startswith("sqlite:///"):
            raise ValueError("LIGHTNING_STORE is not a sqlite:/// URL")
        return Path(self.lightning_store.removeprefix("sqlite:///"))

    @property
    def embedded_db_path(self) -> Path:
        """The SQLite file for embedded parts (local queue, loop cursors), whichever store holds episodes."""
        if self.lightning_store.startswith("sqlite:///"):
            return self.sqlite_path
        return self.lightning_home / "lightning.db"

    @property
    def datasets_dir(self) -> Path:
        return self.lightning_home / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.lightning_home / "models"

    @property
    def spool_dir(self) -> Path:
        return self.lightning_home / "spool"

    @property
    def gate_budget_seconds(self) -> float:
        """The gate's time budget: GATE_TIME_BUDGET_SECONDS, else what the function timeout leaves
        after the rollout and ``PROMOTION_OVERHEAD_SECONDS`` (may be <= 0: ``check_time_limits`` refuses)."""
        if self.gate_time_budget_seconds is not None:
            return self.gate_time_budget_seconds
        return self.function_timeout_seconds - self.rollout_timeout_seconds - PROMOTION_OVERHEAD_SECONDS

    def masked(self) -> dict[str, Any]:
        """Effective settings with secrets masked, for ``show-config``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name.upper()] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                shown[name.upper()] = str(value)
            else:
                shown[name.upper()] = value
        return shown


PROMOTION_OVERHEAD_SECONDS = 60.0
"""What a promotion spends outside the gate and the rollout: registry reads and writes, an existing
deployment's check, the rollout's last request running past its budget (one request timeout, 30 s)."""
MIN_GATE_BUDGET_SECONDS = 30.0


def check_time_limits(settings: Settings) -> None:
    """Refuse, at start-up, settings under which a promotion cannot finish inside the host's function
    timeout: the gate's budget + the rollout's + the overhead must fit in FUNCTION_TIMEOUT_SECONDS.

    Called by the Functions host on its first invocation and by ``run-loop`` (the same settings run
    both hosts). Pure: reads ``settings`` only."""
    from lightning.domain.errors import ConfigurationError

    budget = settings.gate_budget_seconds
    needed = budget + settings.rollout_timeout_seconds + PROMOTION_OVERHEAD_SECONDS
    if budget < MIN_GATE_BUDGET_SECONDS or needed > settings.function_timeout_seconds:
        raise ConfigurationError(
            f"a promotion cannot fit in FUNCTION_TIMEOUT_SECONDS={settings.function_timeout_seconds:g}: "
            f"the gate's budget ({budget:g}s{'' if settings.gate_time_budget_seconds else ', derived'}) "
            f"+ ROLLOUT_TIMEOUT_SECONDS ({settings.rollout_timeout_seconds:g}s) + {PROMOTION_OVERHEAD_SECONDS:g}s "
            f"of overhead = {needed:g}s, and the gate needs at least {MIN_GATE_BUDGET_SECONDS:g}s. Lower "
            "ROLLOUT_TIMEOUT_SECONDS or GATE_TIME_BUDGET_SECONDS, or raise functionTimeout in host.json "
            "together with FUNCTION_TIMEOUT_SECONDS"
        )


def get_settings(**overrides: Any) -> Settings:
    """Read settings now (never at import)."""
    return Settings(**overrides)

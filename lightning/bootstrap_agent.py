"""The agent pod's composition root: the analytics agent, its episode capture and its API keys from
``Settings`` (the rest of the wiring, the ``Container``, is ``lightning.bootstrap``).

Separate from ``lightning.bootstrap`` because the two are deployed apart: the Function App ships
``lightning.bootstrap`` with ``requirements.txt`` only, and must never reach the agent's server,
telemetry and capture machinery; the agent's image has the ``agent`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lightning.bootstrap import Container
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from lightning.agent.core import AnalyticsAgent
    from lightning.agent.models import ModelSelector
    from lightning.capture import CapturePolicy, EpisodeCapture
    from lightning.ports.chat import ChatModel
    from lightning.ports.episodes import EpisodeStore
    from lightning.ports.models import ModelRegistry


def capture_policy(settings: Settings) -> CapturePolicy:
    """``CAPTURE_BATCH_SIZE``, ``CAPTURE_FLUSH_SECONDS``, ``CAPTURE_MAX_RESULT_CHARS`` (which also caps
    query, response and error)."""
    from lightning.capture import CapturePolicy

    return CapturePolicy(
        batch_size=settings.capture_batch_size,
        flush_seconds=settings.capture_flush_seconds,
        max_result_chars=settings.capture_max_result_chars,
        max_text_chars=settings.capture_max_result_chars,
    )


def episode_capture(
    settings: Settings,
    *,
    store: EpisodeStore | None = None,
    enabled: bool | None = None,
    close_at_exit: bool = True,
) -> EpisodeCapture:
    """On when ``ENABLE_EPISODE_CAPTURE`` (or ``enabled``) says so, into ``store`` or else the configured
    episode store (built on the writer thread at its first write, so a store outage spools)."""
    from lightning.capture import EpisodeCapture

    if not (settings.enable_episode_capture if enabled is None else enabled):
        return EpisodeCapture.disabled()

    def configured_store() -> EpisodeStore:
        return Container(settings).episodes

    return EpisodeCapture.start(
        store if store is not None else configured_store,
        spool_dir=settings.spool_dir,
        policy=capture_policy(settings),
        close_at_exit=close_at_exit,
    )


def model_selector(
    settings: Settings,
    *,
    agent_id: str,
    follow_registry: bool = False,
    registry: Callable[[], ModelRegistry] | None = None,
    ttl: float = 2.0,
) -> ModelSelector:
    """``USE_TUNED_MODEL`` + ``TUNED_MODEL_NAME``, else (``follow_registry``) the registry's active version,
    else the base model: ``AZURE_OPENAI_DEPLOYMENT`` on Azure, ``BASE_MODEL`` otherwise."""
    from lightning.agent.models import ModelSelector

    tuned: str | None = None
    if settings.use_tuned_model:
        if not settings.tuned_model_name:
            raise ConfigurationError(
                "USE_TUNED_MODEL=true needs TUNED_MODEL_NAME (the fine-tuned model or deployment name)"
            )
        tuned = settings.tuned_model_name
    if follow_registry and registry is None:

        def registry() -> ModelRegistry:
            return Container(settings).models

    base = settings.base_model or "local-base"
    if settings.trainer == "azure-openai":
        base = settings.azure_openai_deployment
    return ModelSelector(
        agent_id=agent_id,
        base_model=base,
        tuned_model=tuned,
        registry=registry if follow_registry else None,
        ttl=ttl,
    )


def build_agent(
    settings: Settings,
    *,
    agent_id: str,
    follow_registry: bool = False,
    chat: ChatModel | None = None,
    capture: EpisodeCapture | None = None,
) -> AnalyticsAgent:
    """The agent as configured; ``chat``/``capture`` override the configured ones (tests, benchmarks)."""
    from lightning.agent.core import AnalyticsAgent

    container = Container(settings)
    models = model_selector(
        settings,
        agent_id=agent_id,
        follow_registry=follow_registry,
        registry=(lambda: container.models) if follow_registry else None,
    )
    return AnalyticsAgent(
        definition=container.agents.get(agent_id),
        chat=chat or container.chat,
        models=models,
        capture=capture if capture is not None else episode_capture(settings),
    )


def agent_api_keys(settings: Settings) -> tuple[str, ...]:
    """The keys ``POST /message`` accepts: ``AGENT_API_KEY`` then every ``AGENT_API_KEYS`` entry."""
    from lightning.agent.auth import parse_api_keys

    return parse_api_keys(
        *(
            secret.get_secret_value() if secret is not None else None
            for secret in (settings.agent_api_key, settings.agent_api_keys)
        )
    )


def serve_agent(
    settings: Settings,
    *,
    agent_id: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    follow_registry: bool = True,
    start_model_server: bool = True,
    on_listening: Callable[[str, AnalyticsAgent], None] | None = None,
    log_level: str = "warning",
) -> None:
    """``serve-agent``: with ``LIGHTNING_TRAINER=local`` (and ``start_model_server``) the model server is
    started at ``LIGHTNING_MODEL_SERVER`` when none answers; telemetry goes to
    ``APPLICATIONINSIGHTS_CONNECTION_STRING`` when set."""
    from lightning.agent.runtime import serve

    telemetry = settings.applicationinsights_connection_string
    serve(
        lambda: build_agent(settings, agent_id=agent_id, follow_registry=follow_registry),
        agent_id=agent_id,
        host=host,
        port=port,
        local_model_server=(settings.lightning_model_server, settings.models_dir)
        if start_model_server and settings.trainer == "local"
        else None,
        telemetry_connection_string=telemetry.get_secret_value() if telemetry is not None else None,
        api_keys=agent_api_keys(settings),
        on_listening=on_listening,
        log_level=log_level,
    )

"""Model selection: TUNED_MODEL_NAME, then the registry's active version (re-read every ~2 s), then base."""

from __future__ import annotations

import pytest

from lightning.agent.models import ModelSelector
from lightning.bootstrap_agent import model_selector
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError
from lightning.domain.model import ModelVersion


class Registry:
    def __init__(self) -> None:
        self.version: ModelVersion | None = None
        self.reads = 0
        self.fail = False

    def active(self, agent_id: str) -> ModelVersion | None:
        self.reads += 1
        if self.fail:
            raise OSError("database is locked")
        return self.version


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _version(name: str, deployment: str | None = None) -> ModelVersion:
    return ModelVersion(
        id="autonomous-agent:v1",
        agent_id="autonomous-agent",
        version=1,
        model_name=name,
        deployment_name=deployment,
    )


def test_base_model_when_nothing_is_tuned() -> None:
    selector = model_selector(Settings(), agent_id="autonomous-agent")
    assert selector.resolve() == ("local-base", "base")
    azure = Settings(
        azure_openai_endpoint="https://x.openai.azure.com", azure_openai_deployment="gpt-4o-mini-prod"
    )
    assert model_selector(azure, agent_id="autonomous-agent").current() == "gpt-4o-mini-prod"


def test_the_workshop_env_wins_over_the_registry() -> None:
    registry = Registry()
    registry.version = _version("ft:local-base:autonomous-agent:aaa")
    settings = Settings(use_tuned_model=True, tuned_model_name="ft:gpt-4o-mini:autonomous-agent:abc123")
    selector = model_selector(
        settings, agent_id="autonomous-agent", follow_registry=True, registry=lambda: registry
    )
    assert selector.resolve() == ("ft:gpt-4o-mini:autonomous-agent:abc123", "tuned-env")
    assert registry.reads == 0


def test_use_tuned_model_without_a_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TUNED_MODEL_NAME"):
        model_selector(Settings(use_tuned_model=True), agent_id="autonomous-agent")


def test_a_promotion_is_picked_up_after_the_ttl_without_restart() -> None:
    registry, clock = Registry(), Clock()
    selector = ModelSelector(
        agent_id="autonomous-agent", base_model="local-base", registry=lambda: registry, ttl=2.0, clock=clock
    )
    assert selector.resolve() == ("local-base", "base")
    registry.version = _version("ft:local-base:autonomous-agent:bbb", deployment="autonomous-agent-v2")
    clock.now += 1.0
    assert selector.current() == "local-base"  # cached: at most one registry read per ttl
    clock.now += 1.5
    assert selector.resolve() == ("autonomous-agent-v2", "registry")
    assert registry.reads == 2


def test_registry_failures_keep_the_last_answer() -> None:
    registry, clock = Registry(), Clock()
    registry.version = _version("ft:local-base:autonomous-agent:ccc")
    selector = ModelSelector(
        agent_id="autonomous-agent", base_model="local-base", registry=lambda: registry, clock=clock
    )
    assert selector.current() == "ft:local-base:autonomous-agent:ccc"
    registry.fail = True
    clock.now += 5
    assert selector.current() == "ft:local-base:autonomous-agent:ccc"


def test_a_registry_that_cannot_be_built_means_the_base_model() -> None:
    def missing() -> Registry:
        raise ModuleNotFoundError("lightning.adapters.sqlite.models")

    selector = ModelSelector(agent_id="autonomous-agent", base_model="local-base", registry=missing)
    assert selector.resolve() == ("local-base", "base")

"""OpenAIChatModel through the openai SDK against the real local model server."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.adapters.openai.chat import OpenAIChatModel
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.retry import RetryPolicy
from lightning.agent.runtime import free_port
from lightning.bootstrap import openai_endpoint
from lightning.config import Settings, get_settings
from lightning.domain.errors import ProviderError, TransientProviderError


@pytest.fixture
def agent() -> Any:
    return YamlAgentRegistry().get("autonomous-agent")


def test_choose_tool_returns_a_tool_call_of_the_agent(use_model_server: Any, agent: Any) -> None:
    chat = OpenAIChatModel.connect(openai_endpoint(get_settings()))
    choice = chat.choose_tool(
        model="local-base",
        system_prompt=agent.system_prompt,
        tools=agent.openai_tools(),
        query="Analyze customer churn for Q4 2025",
    )
    assert choice.model == "local-base"
    assert choice.tool == "analyze_churn"
    assert choice.arguments == {"period": "Q4 2025"}
    assert choice.prompt_tokens > 0


def test_an_unknown_model_is_a_permanent_provider_error(use_model_server: Any, agent: Any) -> None:
    chat = OpenAIChatModel.connect(openai_endpoint(get_settings()))
    with pytest.raises(ProviderError, match="404") as caught:
        chat.choose_tool(model="ft:nope", system_prompt="s", tools=agent.openai_tools(), query="q")
    assert not isinstance(caught.value, TransientProviderError)
    assert caught.value.status_code == 404


def test_no_server_is_a_transient_error_after_quick_retries(agent: Any) -> None:
    settings = Settings(lightning_model_server=f"http://127.0.0.1:{free_port()}/v1")
    waits: list[float] = []
    chat = OpenAIChatModel.connect(openai_endpoint(settings))
    chat.retry = RetryPolicy(max_attempts=3, sleep=waits.append)
    with pytest.raises(TransientProviderError, match="cannot reach"):
        chat.choose_tool(model="local-base", system_prompt="s", tools=agent.openai_tools(), query="q")
    assert len(waits) == 2

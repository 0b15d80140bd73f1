"""Fixtures for the agent's unit tests: its definition and a chat model that knows the right answer."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import generate_queries, workshop_samples
from lightning.domain.agent import AgentDefinition
from lightning.domain.errors import TransientProviderError
from lightning.ports.chat import ToolCallChoice
from tests.fakes.chat import OneByOne


class OracleChat(OneByOne):
    """A ChatModel that answers known queries correctly; scripted answers for the rest."""

    def __init__(self) -> None:
        self.truth = {s.query: s for s in [*workshop_samples(), *generate_queries(50, seed=1)]}
        self.scripted: dict[str, ToolCallChoice | Exception] = {}
        self.calls: list[dict[str, Any]] = []

    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice:
        self.calls.append({"model": model, "system_prompt": system_prompt, "tools": tools, "query": query})
        scripted = self.scripted.get(query)
        if isinstance(scripted, Exception):
            raise scripted
        if scripted is not None:
            return scripted.model_copy(update={"model": model})
        sample = self.truth.get(query)
        if sample is None:
            raise TransientProviderError("model server unreachable", provider="test")
        return ToolCallChoice(model=model, tool=sample.tool, arguments=dict(sample.arguments))


@pytest.fixture(scope="session")
def definition() -> AgentDefinition:
    return YamlAgentRegistry().get("autonomous-agent")


@pytest.fixture
def oracle() -> OracleChat:
    return OracleChat()

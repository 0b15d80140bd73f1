"""local-base: lexical zero-shot tool choice, deliberately imperfect on paraphrases."""

from __future__ import annotations

import pytest

from lightning.adapters.modelserver.text import ToolDef
from lightning.adapters.modelserver.zeroshot import ZeroShotModel, guess_argument
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import workshop_samples


@pytest.fixture(scope="module")
def agent_tools() -> tuple[list[ToolDef], str]:
    agent = YamlAgentRegistry().get("autonomous-agent")
    return [ToolDef.from_openai(tool) for tool in agent.openai_tools()], agent.system_prompt


def test_descriptive_requests_get_the_right_tool(agent_tools: tuple[list[ToolDef], str]) -> None:
    tools, prompt = agent_tools
    model = ZeroShotModel()
    right = 0
    for sample in workshop_samples():
        prediction = model.predict(sample.query, tools, system_prompt=prompt)
        right += prediction.tool == sample.tool
    assert right >= 4  # the workshop's five use the tools' own words


def test_stated_values_are_read_from_the_text(agent_tools: tuple[list[ToolDef], str]) -> None:
    tools, prompt = agent_tools
    prediction = ZeroShotModel().predict("Analyze customer churn for Q4 2025", tools, system_prompt=prompt)
    assert prediction.tool == "analyze_churn"
    assert prediction.arguments == {"period": "Q4 2025"}


def test_a_paraphrase_with_no_shared_words_gets_no_tool(agent_tools: tuple[list[ToolDef], str]) -> None:
    tools, prompt = agent_tools
    prediction = ZeroShotModel().predict("Who defected to competitors lately?", tools, system_prompt=prompt)
    assert prediction.tool is None
    assert prediction.content
    assert "rephrase" in prediction.content


def test_required_and_forced_choices_always_call_a_tool(agent_tools: tuple[list[ToolDef], str]) -> None:
    tools, prompt = agent_tools
    model = ZeroShotModel()
    required = model.predict(
        "Who defected to competitors lately?", tools, system_prompt=prompt, required=True
    )
    assert required.tool in {tool.name for tool in tools}
    forced = model.predict("anything", tools, system_prompt=prompt, forced="top_products")
    assert forced.tool == "top_products"
    assert set(forced.arguments) == {"n", "metric"}


def test_guesses_come_from_the_schema() -> None:
    assert guess_argument("x", {"type": "string", "default": "d"}) == "d"
    assert guess_argument("region", {"type": "string", "enum": ["north", "all"]}) == "all"
    assert guess_argument("metric", {"type": "string", "enum": ["revenue", "units"]}) == "revenue"
    assert guess_argument("n", {"type": "integer", "minimum": 1, "maximum": 3}) == 3
    assert (
        guess_argument("period", {"type": "string", "description": "e.g. 'Q4 2025', 'last month'"})
        == "Q4 2025"
    )

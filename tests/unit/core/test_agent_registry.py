"""Agent definitions: bundled agents load, unknown ids are refused with the known ones listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.errors import ConfigurationError, NotFound

WORKSHOP_TOOLS = ["analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast"]


@pytest.mark.parametrize("agent_id", ["autonomous-agent", "approval-agent"])
def test_bundled_agents_have_the_five_tools(agent_id: str) -> None:
    agent = YamlAgentRegistry().get(agent_id)
    assert agent.tool_names == WORKSHOP_TOOLS
    assert agent.namespace == "mcp-agents"
    assert {rule.tool for rule in agent.rubric.rules} == set(WORKSHOP_TOOLS)
    for tool in agent.openai_tools():
        assert tool["type"] == "function"
        assert tool["function"]["parameters"]["type"] == "object"


def test_unknown_agent_lists_known_ones() -> None:
    with pytest.raises(NotFound, match="registered agents: approval-agent, autonomous-agent"):
        YamlAgentRegistry().get("nope")


def test_extra_dir_adds_agents_and_rejects_bad_files(tmp_path: Path) -> None:
    source = YamlAgentRegistry().get("autonomous-agent")
    import yaml

    doc = source.model_dump()
    doc["id"] = "custom-agent"
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump(doc))
    assert YamlAgentRegistry(extra_dir=tmp_path).get("custom-agent").tool_names == WORKSHOP_TOOLS

    doc["rubric"]["rules"][0]["tool"] = "not_a_tool"
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigurationError, match="invalid"):
        YamlAgentRegistry(extra_dir=tmp_path)

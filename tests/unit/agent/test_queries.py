"""The query generator: deterministic, balanced, varied, and valid under the agents' tool schemas."""

from __future__ import annotations

import collections

import jsonschema
import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import (
    TOOL_DEFAULTS,
    TOOLS,
    WORKSHOP_QUERIES,
    generate_queries,
    workshop_samples,
)


@pytest.fixture(scope="module")
def agents():
    registry = YamlAgentRegistry()
    return {agent_id: registry.get(agent_id) for agent_id in ("autonomous-agent", "approval-agent")}


def test_same_seed_same_samples_and_different_seed_differs() -> None:
    assert generate_queries(200, seed=7) == generate_queries(200, seed=7)
    assert generate_queries(200, seed=7) != generate_queries(200, seed=8)
    assert generate_queries(50, agent_id="approval-agent") != generate_queries(50)


def test_small_samples_cover_every_tool_and_large_ones_are_balanced() -> None:
    assert {sample.tool for sample in generate_queries(5, seed=3)} == set(TOOLS)
    counts = collections.Counter(sample.tool for sample in generate_queries(1000, seed=1))
    assert set(counts.values()) == {200}


def test_queries_are_varied() -> None:
    samples = generate_queries(1000, seed=0)
    assert len({sample.query for sample in samples}) > 600
    for tool in TOOLS:
        per_tool = [s for s in samples if s.tool == tool]
        assert len({s.query for s in per_tool}) > 80, tool
        assert len({str(sorted(s.arguments.items())) for s in per_tool}) >= 3, tool
    assert {"descriptive", "paraphrase"} <= {s.style for s in samples}


@pytest.mark.parametrize("agent_id", ["autonomous-agent", "approval-agent"])
def test_every_sample_is_valid_under_the_agent_tool_schema(agents, agent_id: str) -> None:
    agent = agents[agent_id]
    for sample in [*workshop_samples(), *generate_queries(500, seed=11, agent_id=agent_id)]:
        spec = agent.tool(sample.tool)
        assert spec is not None
        jsonschema.validate(sample.arguments, spec.parameters)


def test_defaults_are_valid_and_complete(agents) -> None:
    agent = agents["autonomous-agent"]
    for tool, defaults in TOOL_DEFAULTS.items():
        spec = agent.tool(tool)
        assert spec is not None
        assert set(defaults) == set(spec.required)
        jsonschema.validate(defaults, spec.parameters)


def test_stated_values_appear_in_the_query() -> None:
    for sample in generate_queries(500, seed=5):
        period = sample.arguments.get("period")
        if period and period not in TOOL_DEFAULTS[sample.tool].values():
            assert period in sample.query, sample


def test_workshop_queries_are_the_five_of_the_workshop() -> None:
    samples = workshop_samples()
    assert [s.query for s in samples] == list(WORKSHOP_QUERIES)
    assert [s.tool for s in samples] == list(TOOLS)
    assert samples[0].arguments == {"period": "Q4 2025"}
    assert samples[2].arguments == {"n": 10, "metric": "revenue"}


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError):
        generate_queries(-1)

"""The held-out requests: every line valid under the tool schemas, answerable, and not generated."""

from __future__ import annotations

import collections
import json

import jsonschema
import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.heldout import HELDOUT_FILE, calls_agree, heldout_queries, heldout_samples
from lightning.agent.queries import TOOLS, generate_queries
from lightning.agent.sample_data import AS_OF
from lightning.agent.tools import parse_period, run_tool


@pytest.fixture(scope="module")
def agents():
    registry = YamlAgentRegistry()
    return [registry.get(agent_id) for agent_id in ("autonomous-agent", "approval-agent")]


def test_every_line_is_a_known_call_valid_under_every_agents_tool_schema(agents) -> None:
    lines = [line for line in HELDOUT_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) >= 200
    for number, line in enumerate(lines, start=1):
        record = json.loads(line)
        assert set(record) == {"query", "expected_tool", "expected_arguments", "family"}, number
        assert record["query"].strip(), number
        for agent in agents:
            tool = agent.tool(record["expected_tool"])
            assert tool is not None, (number, record["expected_tool"])
            jsonschema.validate(record["expected_arguments"], tool.parameters)
            # Every argument is given: an unstated value takes the tool's default.
            assert set(record["expected_arguments"]) == set(tool.parameters["properties"]), number


def test_every_call_runs_on_the_sample_data_and_periods_are_canonical() -> None:
    for query in heldout_queries():
        result = run_tool(query.expected_tool, query.expected_arguments)
        assert "error" not in result, query
        period = query.expected_arguments.get("period")
        if period is not None:
            parsed = parse_period(period, as_of=AS_OF)
            assert parsed.label == period
            if query.expected_tool == "sales_report":
                assert not parsed.future, query  # a report of the future is a forecast


def test_the_set_is_balanced_varied_and_hand_written() -> None:
    queries = heldout_queries()
    texts = [query.query.lower() for query in queries]
    assert len(set(texts)) == len(texts)
    per_tool = collections.Counter(query.expected_tool for query in queries)
    assert set(per_tool) == set(TOOLS)
    assert min(per_tool.values()) >= 35
    families = collections.Counter(query.family for query in queries)
    assert families["hard_negative"] >= 30
    assert {"idiom", "typo", "context", "mixed_cue"} <= set(families)
    generated = {sample.query.lower() for seed in range(3) for sample in generate_queries(3000, seed=seed)}
    assert not generated & set(texts)


def test_samples_carry_the_heldout_style() -> None:
    samples = heldout_samples()
    assert len(samples) == len(heldout_queries())
    assert {sample.style for sample in samples} == {"heldout"}
    assert samples[0].tool == heldout_queries()[0].expected_tool


@pytest.mark.parametrize(
    ("tool", "arguments", "agree"),
    [
        ("sales_report", {"region": "west", "period": "last quarter"}, True),
        ("sales_report", {"region": "west", "period": "previous quarter"}, True),
        ("sales_report", {"region": "west", "period": "Q3 2026"}, True),  # the same three months
        ("sales_report", {"region": "west", "period": "Q2 2026"}, False),
        ("sales_report", {"region": "all", "period": "last quarter"}, False),
        ("sales_report", {"region": "west", "period": "not a period"}, False),
        ("sales_report", {"region": "west"}, False),
        ("analyze_churn", {"period": "last quarter"}, False),
    ],
)
def test_calls_agree_when_they_give_the_same_result(
    tool: str, arguments: dict[str, object], agree: bool
) -> None:
    expected = {"region": "west", "period": "last quarter"}
    assert calls_agree(tool, arguments, "sales_report", expected) is agree


def test_integers_must_match_in_value_and_type() -> None:
    assert calls_agree("sales_forecast", {"horizon_months": 6}, "sales_forecast", {"horizon_months": 6})
    assert not calls_agree("sales_forecast", {"horizon_months": 5}, "sales_forecast", {"horizon_months": 6})
    assert not calls_agree("sales_forecast", {"horizon_months": "6"}, "sales_forecast", {"horizon_months": 6})

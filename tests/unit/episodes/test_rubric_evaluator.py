"""RubricEvaluator: the workshop's reward bands from the agent's rubric, deterministically."""

from __future__ import annotations

import pytest

from lightning.adapters.evaluators.rubric import RubricEvaluator, normalize
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.agent import AgentDefinition
from tests.fakes.episodes import make_episode

CHURN_RESULT = {"period": "Q4 2025", "churn_rate": 0.12, "at_risk_customers": 450}


@pytest.fixture(scope="module")
def agent() -> AgentDefinition:
    return YamlAgentRegistry().get("autonomous-agent")


@pytest.fixture(scope="module")
def rubric() -> RubricEvaluator:
    return RubricEvaluator()


@pytest.mark.parametrize(
    ("query", "tool"),
    [
        ("Analyze customer churn for Q4 2025", "analyze_churn"),
        ("Generate a sales report for the west region", "sales_report"),
        ("What are the top 10 products by revenue?", "top_products"),
        ("Show me customer segments at risk", "customer_segments"),
        ("Predict next month's sales forecast", "sales_forecast"),
        ("Which customers are AT-RISK?", "customer_segments"),
    ],
)
def test_expected_tool_is_the_best_matching_rule(
    rubric: RubricEvaluator, agent: AgentDefinition, query: str, tool: str
) -> None:
    verdict = rubric.evaluate(make_episode(query=query, tool=None), agent)
    assert verdict.expected_tool == tool


def test_excellent_when_correct_complete_and_grounded(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    verdict = rubric.evaluate(make_episode(result=CHURN_RESULT), agent)
    assert verdict.score == 1.0
    assert (verdict.tool_correct, verdict.complete, verdict.expected_tool) == (True, True, "analyze_churn")
    assert verdict.reason.startswith("excellent")
    assert (verdict.evaluator, verdict.evaluator_version) == ("task_adherence", "rubric-1")


def test_excellent_but_not_perfect_when_defaults_were_filled_in(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    episode = make_episode(
        query="Generate a sales report for the west region",
        tool="sales_report",
        arguments={"region": "west", "period": "last quarter"},
        result={"region": "west", "period": "last quarter", "revenue": 1.0, "orders": 3},
    )
    verdict = rubric.evaluate(episode, agent)
    assert verdict.score == 0.9
    assert "period not stated" in verdict.reason


def test_good_when_mostly_complete(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    verdict = rubric.evaluate(make_episode(result={"period": "Q4 2025", "churn_rate": 0.12}), agent)
    assert 0.7 <= verdict.score < 0.9
    assert "at_risk_customers" in verdict.reason
    assert verdict.tool_correct is True
    assert verdict.complete is False


def test_acceptable_when_largely_incomplete(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    verdict = rubric.evaluate(make_episode(arguments={}, result={"unrelated": 1}), agent)
    assert 0.5 <= verdict.score < 0.7
    assert "missing argument period" in verdict.reason


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"n": 500, "metric": "revenue"}, "invalid n=500"),
        ({"n": "ten", "metric": "revenue"}, "invalid n='ten'"),
        ({"n": 10, "metric": "vibes"}, "invalid metric='vibes'"),
        ({"n": 10, "metric": "revenue", "extra": 1}, "unknown argument(s) extra"),
    ],
)
def test_arguments_are_checked_against_the_tool_schema(
    rubric: RubricEvaluator, agent: AgentDefinition, arguments: dict[str, object], problem: str
) -> None:
    episode = make_episode(
        query="What are the top 10 products by revenue?",
        tool="top_products",
        arguments=arguments,
        result={"metric": "revenue", "products": [{"name": "x"}]},
    )
    verdict = rubric.evaluate(episode, agent)
    assert problem in verdict.reason
    assert 0.5 <= verdict.score < 0.9


def test_poor_when_another_plausible_tool_was_chosen(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    episode = make_episode(
        query="What are the top 10 products by revenue?",
        tool="sales_report",
        arguments={"region": "all", "period": "2025"},
        result={"region": "all"},
    )
    verdict = rubric.evaluate(episode, agent)
    assert 0.3 <= verdict.score < 0.5
    assert verdict.tool_correct is False
    assert verdict.expected_tool == "top_products"


@pytest.mark.parametrize(
    ("tool", "error", "text"),
    [
        ("analyze_churn", None, "wrong tool"),  # the query is about forecasting
        (None, None, "called no tool"),
        ("delete_everything", None, "not one of the agent's tools"),
        ("sales_forecast", "timeout calling backend", "returned an error"),
        ("analyze_churn", "boom", "wrong tool"),
    ],
)
def test_failed_band(
    rubric: RubricEvaluator, agent: AgentDefinition, tool: str | None, error: str | None, text: str
) -> None:
    episode = make_episode(
        query="Predict next month's sales forecast",
        tool=tool,
        arguments={"horizon_months": 1},
        result={"horizon_months": 1, "forecast": [1]},
        error=error,
    )
    verdict = rubric.evaluate(episode, agent)
    assert verdict.score < 0.3
    assert text in verdict.reason


def test_error_inside_the_result_counts_as_an_error(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    verdict = rubric.evaluate(make_episode(result={"error": "backend down"}), agent)
    assert verdict.score < 0.3
    assert "backend down" in verdict.reason


def test_a_json_string_result_is_read(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    episode = make_episode(result='{"period": "Q4 2025", "churn_rate": 0.1, "at_risk_customers": 4}')
    assert rubric.evaluate(episode, agent).score == 1.0


def test_unmatched_query_is_acceptable_at_best(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    verdict = rubric.evaluate(make_episode(query="hello there", result=CHURN_RESULT), agent)
    assert 0.5 <= verdict.score < 0.7
    assert verdict.expected_tool is None
    assert verdict.tool_correct is None


def test_deterministic_and_recompiled_when_the_definition_changes(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    episode = make_episode(query="Tell me about attrition in 2025", arguments={"period": "2025"})
    assert rubric.evaluate(episode, agent) == rubric.evaluate(episode, agent)
    rules = [
        rule.model_copy(update={"intents": ["zzz"]}) if rule.tool == "analyze_churn" else rule
        for rule in agent.rubric.rules
    ]
    changed = agent.model_copy(update={"rubric": agent.rubric.model_copy(update={"rules": rules})})
    assert rubric.evaluate(episode, changed).expected_tool is None


def test_normalize() -> None:
    assert normalize("  Next MONTH's  at-risk!! ") == "next month s at risk"

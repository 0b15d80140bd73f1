"""RubricEvaluator: the workshop's reward bands from the agent's rubric, deterministically."""

from __future__ import annotations

import pytest

from lightning.adapters.evaluators.rubric import (
    RubricEvaluator,
    normalize,
    read_counts,
    read_months,
    read_periods,
)
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.tools import run_tool
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
    assert (verdict.evaluator, verdict.evaluator_version) == ("task_adherence", "rubric-2")


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
        rule.model_copy(update={"intents": ["zzz"], "decisive": []}) if rule.tool == "analyze_churn" else rule
        for rule in agent.rubric.rules
    ]
    changed = agent.model_copy(update={"rubric": agent.rubric.model_copy(update={"rules": rules})})
    assert rubric.evaluate(episode, changed).expected_tool is None


def test_normalize() -> None:
    assert normalize("  Next MONTH's  at-risk!! ") == "next month s at risk"


# --- rubric-2: decisive words, argument agreement, typos -------------------------------------------


def _call(query: str, tool: str, arguments: dict[str, object]):
    """An episode whose result is the tool's real answer to the call."""
    return make_episode(query=query, tool=tool, arguments=arguments, result=run_tool(tool, arguments))


@pytest.mark.parametrize(
    ("query", "tool"),
    [
        ("Forecast sales for the next 6 months", "sales_forecast"),
        ("Sales for the next 9 months, please", "sales_forecast"),
        ("Predict how many clients churn next quarter", "analyze_churn"),
        ("Segment customers by churn risk", "customer_segments"),
        ("Revenue of our best products by region", "top_products"),
        ("Sales report for the north for Q2 2025", "sales_report"),
    ],
)
def test_a_decisive_word_outweighs_generic_phrases(
    rubric: RubricEvaluator, agent: AgentDefinition, query: str, tool: str
) -> None:
    assert rubric.evaluate(make_episode(query=query, tool=None), agent).expected_tool == tool


def test_forecast_with_a_report_phrase_expects_the_forecast(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    query = "Forecast sales for the next 6 months"
    right = rubric.evaluate(_call(query, "sales_forecast", {"horizon_months": 6}), agent)
    wrong = rubric.evaluate(_call(query, "sales_report", {"region": "all", "period": "last quarter"}), agent)
    assert right.score == 1.0
    assert wrong.score < 0.5
    assert wrong.expected_tool == "sales_forecast"


@pytest.mark.parametrize(
    ("query", "tool", "right", "wrong", "argument"),
    [
        ("Predict next month's sales forecast", "sales_forecast", {"horizon_months": 1},
         {"horizon_months": 5}, "horizon_months"),
        ("Forecast sales over the next two quarters", "sales_forecast", {"horizon_months": 6},
         {"horizon_months": 3}, "horizon_months"),
        ("Sales outlook for half a year", "sales_forecast", {"horizon_months": 6},
         {"horizon_months": 3}, "horizon_months"),
        ("Predict sales 2 years ahead", "sales_forecast", {"horizon_months": 24},
         {"horizon_months": 2}, "horizon_months"),
        ("Generate a sales report for the western region", "sales_report",
         {"region": "west", "period": "last quarter"}, {"region": "all", "period": "last quarter"}, "region"),
        ("Sales report for the west for Q3 2025", "sales_report", {"region": "west", "period": "Q3 2025"},
         {"region": "west", "period": "last quarter"}, "period"),
        ("Churn for last month", "analyze_churn", {"period": "last month"}, {"period": "last quarter"},
         "period"),
        ("Churn year to date", "analyze_churn", {"period": "this year"}, {"period": "last year"}, "period"),
        ("List the 5 best products by revenue", "top_products", {"n": 5, "metric": "revenue"},
         {"n": 10, "metric": "revenue"}, "n"),
        ("Our twelve most profitable products", "top_products", {"n": 12, "metric": "margin"},
         {"n": 12, "metric": "revenue"}, "metric"),
        ("Show the low-risk customer segments", "customer_segments", {"risk_level": "low"},
         {"risk_level": "high"}, "risk_level"),
    ],
)  # fmt: skip
def test_an_argument_that_contradicts_the_request_is_not_accepted(
    rubric: RubricEvaluator,
    agent: AgentDefinition,
    query: str,
    tool: str,
    right: dict[str, object],
    wrong: dict[str, object],
    argument: str,
) -> None:
    good = rubric.evaluate(_call(query, tool, right), agent)
    bad = rubric.evaluate(_call(query, tool, wrong), agent)
    assert good.score >= 0.9, good.reason
    assert bad.score < 0.7
    assert f"{argument}=" in bad.reason
    assert bad.tool_correct is True


def test_an_unstated_value_must_be_the_default(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    query = "Give me a sales forecast"
    default = rubric.evaluate(_call(query, "sales_forecast", {"horizon_months": 3}), agent)
    invented = rubric.evaluate(_call(query, "sales_forecast", {"horizon_months": 7}), agent)
    assert default.score == 0.9
    assert "horizon_months not stated" in default.reason
    assert invented.score < 0.7
    assert "horizon_months=7 is not stated in the request, so it should be the default 3" in invented.reason


def test_a_period_named_in_other_words_agrees(rubric: RubricEvaluator, agent: AgentDefinition) -> None:
    query = "How did the north do in the previous quarter?"
    verdict = rubric.evaluate(
        _call(query, "sales_report", {"region": "north", "period": "last quarter"}), agent
    )
    assert verdict.score == 1.0, verdict.reason


@pytest.mark.parametrize(
    ("query", "tool"),
    [
        ("forecsat sales for next quarter", "sales_forecast"),  # swapped letters
        ("customer attriton in 2025", "analyze_churn"),  # a missing letter
        ("show the customer segmments", "customer_segments"),  # an extra letter
    ],
)
def test_a_typo_in_a_rubric_word_is_read_as_the_word(
    rubric: RubricEvaluator, agent: AgentDefinition, query: str, tool: str
) -> None:
    assert rubric.evaluate(make_episode(query=query, tool=None), agent).expected_tool == tool


def test_real_words_near_a_rubric_word_are_left_alone(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    # "retail" is one letter from "retain", "doing" from "going": neither is a churn or forecast cue.
    verdict = rubric.evaluate(make_episode(query="How is retail doing in the north?", tool=None), agent)
    assert verdict.expected_tool == "sales_report"


@pytest.mark.parametrize(
    ("text", "periods"),
    [
        ("churn for q4 2025", {"q4 2025"}),
        ("q4 25 churn", {"q4 2025"}),
        ("in h1 2026 and march 2025", {"h1 2026", "2025-03"}),
        ("the previous quarter", {"last quarter"}),
        ("year to date", {"this year"}),
        ("over the past six months", {"last 6 months"}),
        ("in 2024", {"2024"}),
        ("nothing here", set()),
    ],
)
def test_read_periods(text: str, periods: set[str]) -> None:
    assert read_periods(text) == periods


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("next month", {1}),
        ("the next quarter", {3}),
        ("the coming 18 months", {18}),
        ("over the next two years", {24}),
        ("half a year", {6}),
        ("a year and a half", {18}),
        ("a 12 month outlook", {12}),
        ("sales next 6 mo", {6}),
        ("three quarters out", {9}),
        ("based on the last 6 months", set()),
    ],
)
def test_read_months(text: str, months: set[int]) -> None:
    assert read_months(text) == months


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("top 5 products", {5}),
        ("the twelve best products in q3 2025", {12}),
        ("our single best seller", {1}),
        ("top products over the last 6 months", set()),
    ],
)
def test_read_counts(text: str, counts: set[int]) -> None:
    assert read_counts(text) == counts


def test_argument_checks_come_from_the_yaml_for_any_agent(rubric: RubricEvaluator) -> None:
    agent = AgentDefinition.model_validate(
        {
            "id": "weather-agent",
            "system_prompt": "Answer weather questions.",
            "tools": [
                {
                    "name": "weather",
                    "description": "Weather for a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "enum": ["paris", "oslo"]}},
                        "required": ["city"],
                    },
                }
            ],
            "rubric": {
                "rules": [
                    {
                        "tool": "weather",
                        "intents": ["rain"],
                        "decisive": ["weather"],
                        "arguments": {
                            "city": {
                                "extract": "choice",
                                "values": {"paris": ["french capital"]},
                                "default": "oslo",
                            }
                        },
                    }
                ]
            },
        }
    )

    def score(query: str, city: str) -> float:
        episode = make_episode(
            agent_id="weather-agent", query=query, tool="weather", arguments={"city": city}, result={"ok": 1}
        )
        return rubric.evaluate(episode, agent).score

    assert score("weather in the French capital", "paris") == 1.0
    assert score("weather in the French capital", "oslo") < 0.7
    assert score("will it rain", "oslo") == 0.9
    assert score("will it rain", "paris") < 0.7


def test_an_argument_check_on_an_argument_the_tool_lacks_is_refused(agent: AgentDefinition) -> None:
    definition = agent.model_dump()
    definition["rubric"]["rules"][0]["arguments"] = {"colour": {"extract": "choice"}}
    with pytest.raises(ValueError, match="rubric checks arguments analyze_churn does not have: colour"):
        AgentDefinition.model_validate(definition)


def test_remembered_verdicts_tell_equal_values_of_other_types_apart(
    rubric: RubricEvaluator, agent: AgentDefinition
) -> None:
    query = "What are the top 5 products by revenue?"
    result = run_tool("top_products", {"n": 5, "metric": "revenue"})
    as_int = make_episode(
        query=query, tool="top_products", arguments={"n": 5, "metric": "revenue"}, result=result
    )
    as_float = make_episode(
        query=query, tool="top_products", arguments={"n": 5.0, "metric": "revenue"}, result=result
    )
    assert rubric.evaluate(as_int, agent).score == 1.0
    assert "invalid n=5.0" in rubric.evaluate(as_float, agent).reason
    assert rubric.evaluate(as_int, agent).score == 1.0


def test_verdicts_carry_the_flags_a_reviewer_needs() -> None:
    from lightning.adapters.evaluators.rubric import RubricEvaluator
    from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
    from tests.fakes.episodes import make_episode

    agent = YamlAgentRegistry().get("autonomous-agent")
    rubric = RubricEvaluator()
    unverified = rubric.evaluate(make_episode(query="Tell me something interesting"), agent)
    assert "no_intent" in unverified.flags
    wrong_horizon = rubric.evaluate(
        make_episode(
            query="Forecast sales for the next 6 months",
            tool="sales_forecast",
            arguments={"horizon_months": 2},
        ),
        agent,
    )
    assert "argument_disagrees" in wrong_horizon.flags
    clean = rubric.evaluate(make_episode(response="Churn in Q4 2025 was 12%."), agent)
    assert "no_intent" not in clean.flags
    assert "argument_disagrees" not in clean.flags

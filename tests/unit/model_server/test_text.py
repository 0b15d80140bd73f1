"""Reading rules shared by local-base and the fine-tuned models."""

from __future__ import annotations

import pytest

from lightning.adapters.modelserver.text import (
    ToolDef,
    arguments_equal,
    count_message_tokens,
    count_tokens,
    extract_argument,
    find_enum,
    find_integer,
    find_period,
    message_text,
)

N_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 100}
HORIZON_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 24}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Analyze customer churn for Q4 2025", "Q4 2025"),
        ("churn in q1 2026?", "Q1 2026"),
        ("sales for H2 2025 please", "H2 2025"),
        ("How did the West do in March 2025?", "March 2025"),
        ("numbers over the last 6 months", "the last 6 months"),
        ("What was churn last quarter?", "last quarter"),
        ("revenue year to date", "year to date"),
        ("sales in 2024", "2024"),
        ("Which clients are likely to leave us next quarter?", "next quarter"),
        ("Are we losing customers?", None),
    ],
)
def test_find_period_keeps_the_users_wording(text: str, expected: str | None) -> None:
    assert find_period(text) == expected


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ("What are the top 10 products by revenue?", N_SCHEMA, 10),
        ("Show me the five best sellers", N_SCHEMA, 5),
        ("top products in Q4 2025", N_SCHEMA, None),  # the digits of a period are not a count
        ("Forecast sales for the next 18 months", HORIZON_SCHEMA, 18),
        ("Forecast sales for the next two years", HORIZON_SCHEMA, 24),
        ("Forecast sales for the next 30 months", HORIZON_SCHEMA, None),  # out of bounds
        ("How much will we sell over the next half year?", HORIZON_SCHEMA, None),
    ],
)
def test_find_integer(text: str, schema: dict[str, int | str], expected: int | None) -> None:
    assert find_integer(text, schema) == expected


def test_find_enum_takes_whole_words_first_by_position() -> None:
    assert find_enum("Sales report for the West, not the north", ["north", "south", "east", "west"]) == "west"
    assert find_enum("the western region", ["north", "south", "east", "west"]) is None
    assert find_enum("Show the high-risk customer segments", ["low", "medium", "high", "all"]) == "high"


def test_extract_argument_dispatches_on_the_schema() -> None:
    period = {"type": "string", "description": "Period to analyze, e.g. 'Q4 2025'."}
    assert extract_argument("period", period, "churn in Q3 2025") == "Q3 2025"
    assert extract_argument("region", {"type": "string", "enum": ["north", "all"]}, "north") == "north"
    assert extract_argument("note", {"type": "string"}, "anything at all") is None


def test_arguments_equal_compares_in_schema_types() -> None:
    tool = ToolDef(
        name="top_products", parameters={"properties": {"n": N_SCHEMA, "metric": {"type": "string"}}}
    )
    assert arguments_equal(tool, {"n": "10", "metric": "revenue"}, {"n": 10, "metric": "revenue"})
    assert not arguments_equal(tool, {"n": 5, "metric": "revenue"}, {"n": 10, "metric": "revenue"})
    assert not arguments_equal(tool, {"n": 10}, {"n": 10, "metric": "revenue"})


def test_tool_def_rejects_malformed_tools() -> None:
    with pytest.raises(ValueError, match="type 'function'"):
        ToolDef.from_openai({"type": "code_interpreter"})
    with pytest.raises(ValueError, match=r"function\.name"):
        ToolDef.from_openai({"type": "function", "function": {"description": "x"}})


def test_token_counts_are_o200k_and_include_message_overhead() -> None:
    assert count_tokens("hello world") == 2
    messages = [{"role": "user", "content": "hello world"}]
    assert count_message_tokens(messages) == 3 + 3 + count_tokens("user") + 2
    assert (
        message_text([{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}])
        == "a b"
    )

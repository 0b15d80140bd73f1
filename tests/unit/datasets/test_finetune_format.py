"""The provider rules in lightning.domain.finetune_format: limits, keys, token recipe, validators."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lightning.domain.finetune_format import (
    dedupe_key,
    episode_keys,
    example_tokens,
    normalize_query,
    split_for,
    token_limit_for,
    tool_call_id,
    tools_tokens,
    validate_chat_example,
    validate_dpo_example,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "analyze_churn",
            "description": "d",
            "parameters": {
                "type": "object",
                "properties": {"period": {"type": "string", "description": "p"}},
            },
        },
    }
]
GOOD: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are an analytics agent."},
        {"role": "user", "content": "Analyze churn for Q4 2025"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "analyze_churn", "arguments": '{"period":"Q4 2025"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"churn_rate":0.12}'},
        {"role": "assistant", "content": "Churn was 12%."},
    ],
    "tools": TOOLS,
}


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    example = copy.deepcopy(GOOD)
    target: Any = example
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return example


def test_the_reference_example_is_valid() -> None:
    assert validate_chat_example(GOOD) == []


@pytest.mark.parametrize(
    ("example", "problem"),
    [
        (broken(["messages", 1, "role"], "customer"), "role 'customer'"),
        (broken(["messages", 2, "tool_calls", 0, "function", "arguments"], "{period: Q4}"), "not valid JSON"),
        (broken(["messages", 2, "tool_calls", 0, "function", "arguments"], {"period": "Q4"}), "JSON string"),
        (broken(["messages", 2, "tool_calls", 0, "function", "arguments"], "[1, 2]"), "JSON object"),
        (
            broken(["messages", 2, "tool_calls", 0, "function", "name"], "drop_tables"),
            "not one of the example's tools",
        ),
        (broken(["messages", 2, "tool_calls", 0, "type"], "code"), "type must be 'function'"),
        (broken(["messages", 3, "content"], {"churn_rate": 0.12}), "tool message content must be a string"),
        (broken(["messages", 3, "tool_call_id"], "call_9"), "earlier assistant tool call"),
        (broken(["messages", 1, "content"], None), "user message content must be a string"),
        (broken(["messages", 2, "tool_calls"], KeyError), "needs content or tool_calls"),
        (broken(["messages", 1, "extra"], 1), "unexpected keys"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
        ({"messages": []}, "non-empty list"),
        ({"prompt": "x", "completion": "y"}, "unexpected top-level keys"),
    ],
)
def test_validator_names_each_broken_rule(example: dict[str, Any], problem: str) -> None:
    problems = validate_chat_example(example)
    assert any(problem in p for p in problems), problems


def test_dpo_validator() -> None:
    call = GOOD["messages"][2]
    other = copy.deepcopy(call)
    other["tool_calls"][0]["function"]["arguments"] = '{"period":"Q1 2020"}'
    pair = {
        "input": {"messages": GOOD["messages"][:2], "tools": TOOLS},
        "preferred_output": [call],
        "non_preferred_output": [other],
    }
    assert validate_dpo_example(pair) == []
    assert "identical" in " ".join(validate_dpo_example({**pair, "non_preferred_output": [call]}))
    assert validate_dpo_example({**pair, "preferred_output": [GOOD["messages"][1]]})


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("gpt-4o-mini", 65_536),
        ("gpt-4o-mini-2024-07-18", 65_536),
        ("gpt-4.1-nano", 65_536),
        ("gpt-35-turbo-0125", 16_385),
        ("local-base", 65_536),
        ("ft:gpt-35-turbo:org:x:1", 16_385),
        (None, 65_536),
        ("unknown-model", 65_536),
    ],
)
def test_token_limits(model: str | None, limit: int) -> None:
    assert token_limit_for(model) == limit


def test_normalized_query_and_dedupe_key() -> None:
    assert normalize_query("  Top   10 Products?! ") == normalize_query("top 10 products")
    assert dedupe_key("Top 10 products", "top_products", {"n": 10, "metric": "revenue"}) == dedupe_key(
        "top 10 PRODUCTS.", "top_products", {"metric": "revenue", "n": 10}
    )
    assert dedupe_key("Top 10 products", "top_products", {"n": 10}) != dedupe_key(
        "Top 10 products", "top_products", {"n": 11}
    )
    assert dedupe_key("a", "x", {}) != dedupe_key("a", "y", {})


def test_split_and_call_ids_are_stable_and_agree() -> None:
    ids = [f"ep-{i}" for i in range(2000)]
    splits = [split_for(i, 0.2) for i in ids]
    assert 300 < splits.count("validation") < 500
    assert all(episode_keys(i, 0.2) == (split_for(i, 0.2), tool_call_id(i)) for i in ids[:200])
    assert split_for("ep-1", 0.0) == "train"
    # pinned: a change here reshuffles every user's splits and changes every dataset's bytes
    assert tool_call_id("ep-1") == "call_889093358cba90bdfc51235c"
    assert [split_for(f"ep-{i}", 0.5) for i in range(8)] == [
        "train",
        "validation",
        "train",
        "train",
        "validation",
        "validation",
        "train",
        "validation",
    ]


def test_token_recipe(count: Any) -> None:
    # 3 per message + role + content, 3 reply priming; tools per OpenAI's function-definition recipe.
    messages = [{"role": "user", "content": "hello world"}]
    assert example_tokens(messages, [], count) == 3 + count("user") + count("hello world") + 3
    expected_tools = 7 + count("analyze_churn:d") + 3 + 3 + count("period:string:p") + 12
    assert tools_tokens(TOOLS, count) == expected_tools
    assert example_tokens(GOOD["messages"], TOOLS, count) > expected_tools

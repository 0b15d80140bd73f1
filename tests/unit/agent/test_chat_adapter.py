"""OpenAIChatModel's request and parsing: the real openai SDK over an httpx transport stand-in."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from lightning.adapters.openai.chat import OpenAIChatModel
from lightning.adapters.retry import RetryPolicy
from lightning.domain.errors import ProviderError, TransientProviderError


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129},
    }


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


class StandIn:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        return self.responses.pop(0)


def model_over(stand_in: StandIn, **kwargs: Any) -> OpenAIChatModel:
    client = openai.OpenAI(
        api_key="k",
        base_url="http://stand-in/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(stand_in)),
    )
    return OpenAIChatModel(client, retry=RetryPolicy(max_attempts=3, sleep=lambda _: None), **kwargs)


TOOLS = [{"type": "function", "function": {"name": "analyze_churn", "parameters": {"type": "object"}}}]


def choose(chat: OpenAIChatModel) -> Any:
    return chat.choose_tool(
        model="my-deployment", system_prompt="be good", tools=TOOLS, query="churn Q4 2025?"
    )


def test_request_carries_prompt_tools_and_required_tool_choice() -> None:
    stand_in = StandIn(
        httpx.Response(200, json=completion(tool_call("analyze_churn", '{"period": "Q4 2025"}')))
    )
    choice = choose(model_over(stand_in))
    sent = stand_in.requests[0]
    assert sent["model"] == "my-deployment"
    assert sent["messages"] == [
        {"role": "system", "content": "be good"},
        {"role": "user", "content": "churn Q4 2025?"},
    ]
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "required"
    assert sent["temperature"] == 0.0
    # The deployment we called identifies the version, not the base model name Azure echoes.
    assert (choice.model, choice.tool, choice.arguments) == (
        "my-deployment",
        "analyze_churn",
        {"period": "Q4 2025"},
    )
    assert (choice.prompt_tokens, choice.completion_tokens) == (120, 9)


def test_auto_tool_choice_and_a_text_answer() -> None:
    stand_in = StandIn(httpx.Response(200, json=completion({"content": "Churn was 12%."})))
    choice = choose(model_over(stand_in, tool_choice="auto"))
    assert stand_in.requests[0]["tool_choice"] == "auto"
    assert choice.tool is None
    assert choice.content == "Churn was 12%."


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_arguments_that_are_not_a_json_object_are_a_provider_error(arguments: str) -> None:
    stand_in = StandIn(httpx.Response(200, json=completion(tool_call("analyze_churn", arguments))))
    with pytest.raises(ProviderError, match="analyze_churn"):
        choose(model_over(stand_in))


def test_throttling_is_retried_then_succeeds() -> None:
    stand_in = StandIn(
        httpx.Response(429, json={"error": {"message": "Too many requests"}}, headers={"retry-after": "0"}),
        httpx.Response(503, json={"error": {"message": "busy"}}),
        httpx.Response(200, json=completion(tool_call("analyze_churn", "{}"))),
    )
    assert choose(model_over(stand_in)).tool == "analyze_churn"
    assert len(stand_in.requests) == 3


def test_persistent_throttling_is_transient_and_a_bad_request_is_permanent() -> None:
    busy = [httpx.Response(429, json={"error": {"message": "slow down"}}) for _ in range(3)]
    with pytest.raises(TransientProviderError, match="slow down"):
        choose(model_over(StandIn(*busy)))
    missing = StandIn(
        httpx.Response(
            404, json={"error": {"message": "The API deployment for this resource does not exist."}}
        )
    )
    with pytest.raises(ProviderError, match="TUNED_MODEL_NAME") as caught:
        choose(model_over(missing))
    assert caught.value.status_code == 404
    assert len(missing.requests) == 1


def test_choose_tools_answers_in_order_with_failures_as_outcomes() -> None:
    answers = {
        "q0": httpx.Response(200, json=completion(tool_call("analyze_churn", "{}"))),
        "q1": httpx.Response(400, json={"error": {"message": "bad request"}}),
        "q2": httpx.Response(200, json=completion(tool_call("analyze_churn", '{"period": "Q4"}'))),
    }

    def stand_in(request: httpx.Request) -> httpx.Response:
        return answers[json.loads(request.content)["messages"][-1]["content"]]

    client = openai.OpenAI(
        api_key="k",
        base_url="http://stand-in/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(stand_in)),
    )
    chat = OpenAIChatModel(client, retry=RetryPolicy(max_attempts=1), max_concurrency=3)
    out = chat.choose_tools(["q0", "q1", "q2"], model="m", system_prompt="s", tools=TOOLS)
    assert [type(o).__name__ for o in out] == ["ToolCallChoice", "ProviderError", "ToolCallChoice"]
    assert out[2].arguments == {"period": "Q4"}  # type: ignore[union-attr]


def test_choose_tools_never_runs_more_calls_at_once_than_its_pool() -> None:
    import threading

    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}
    three = threading.Barrier(3, timeout=10)  # the first three calls meet: proof the pool runs them together

    def stand_in(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            if json.loads(request.content)["messages"][-1]["content"] in {"q0", "q1", "q2"}:
                three.wait()
            return httpx.Response(200, json=completion(tool_call("analyze_churn", "{}")))
        finally:
            with lock:
                in_flight["now"] -= 1

    client = openai.OpenAI(
        api_key="k",
        base_url="http://stand-in/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(stand_in)),
    )
    chat = OpenAIChatModel(client, max_concurrency=3)
    out = chat.choose_tools([f"q{i}" for i in range(9)], model="m", system_prompt="s", tools=TOOLS)
    assert all(o is not None and not isinstance(o, Exception) for o in out)
    assert in_flight["max"] == 3


def test_choose_tools_starts_no_call_after_its_time_limit() -> None:
    ticks = iter([0.0, 0.0, 5.0, 10.0, 11.0])  # start, then one reading before each call
    stand = StandIn(*[httpx.Response(200, json=completion(tool_call("analyze_churn", "{}")))] * 2)
    chat = model_over(stand, max_concurrency=1, monotonic=lambda: next(ticks))
    out = chat.choose_tools(["a", "b", "c", "d"], model="m", system_prompt="s", tools=TOOLS, time_limit=10)
    assert [o is None for o in out] == [False, False, True, True]
    assert len(stand.requests) == 2

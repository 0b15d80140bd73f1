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

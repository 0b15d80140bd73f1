"""/v1/models and /v1/chat/completions through the openai SDK: tool calls, held-out accuracy, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Model
from openai.types.chat import ChatCompletion

from lightning.adapters.modelserver.text import ToolDef, arguments_equal
from lightning.agent.queries import QuerySample
from lightning.bootstrap import openai_endpoint
from tests.integration.model_server.data import agent_definition, split_samples

AGENT = agent_definition()
TOOLS: list[Any] = AGENT.openai_tools()


def _ask(client: OpenAI, model: str, query: str, **kwargs: Any) -> ChatCompletion:
    messages: list[Any] = [
        {"role": "system", "content": AGENT.system_prompt},
        {"role": "user", "content": query},
    ]
    return client.chat.completions.create(model=model, messages=messages, **kwargs)


def test_models_lists_the_base_and_tuned_models(client: OpenAI, model_server_tuned_model: str) -> None:
    models = client.models.list().data
    for model in models:
        Model.model_validate(model.to_dict())
    ids = [model.id for model in models]
    assert ids[0] == "local-base"
    assert model_server_tuned_model in ids
    assert client.models.retrieve(model_server_tuned_model).owned_by == "user"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("ft:local-base:nope:00000000")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_a_tool_call_has_the_api_shape(client: OpenAI, model_server_tuned_model: str) -> None:
    reply = _ask(
        client,
        model_server_tuned_model,
        "Analyze customer churn for Q4 2025",
        tools=TOOLS,
        tool_choice="auto",
    )
    ChatCompletion.model_validate(reply.to_dict())
    assert reply.object == "chat.completion"
    assert reply.model == model_server_tuned_model
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "analyze_churn"
    assert json.loads(call.function.arguments) == {"period": "Q4 2025"}
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 300  # system prompt + five tool schemas
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_paraphrases_go_to_the_right_tool_only_after_fine_tuning(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    query = "How much will we sell over the next half year?"
    base = _ask(client, "local-base", query, tools=TOOLS).choices[0]
    assert not base.message.tool_calls or base.message.tool_calls[0].function.name != "sales_forecast"
    tuned = _ask(client, model_server_tuned_model, query, tools=TOOLS).choices[0]
    assert tuned.message.tool_calls is not None
    call = tuned.message.tool_calls[0].function
    assert (call.name, json.loads(call.arguments)) == ("sales_forecast", {"horizon_months": 6})


def _accuracy(client: OpenAI, model: str, samples: list[QuerySample]) -> tuple[float, float]:
    tools_by_name = {tool["function"]["name"]: ToolDef.from_openai(tool) for tool in TOOLS}
    right_tool = right_call = 0
    for sample in samples:
        calls = _ask(client, model, sample.query, tools=TOOLS).choices[0].message.tool_calls
        if calls and calls[0].function.name == sample.tool:
            right_tool += 1
            right_call += arguments_equal(
                tools_by_name[sample.tool], json.loads(calls[0].function.arguments), sample.arguments
            )
    return right_tool / len(samples), right_call / len(samples)


def test_the_tuned_model_beats_local_base_on_held_out_requests(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    _, held_out = split_samples(300, 150, seed=11)  # the fixture trained on generate_queries(300, seed=11)
    base_tool, base_call = _accuracy(client, "local-base", held_out)
    tuned_tool, tuned_call = _accuracy(client, model_server_tuned_model, held_out)
    assert tuned_tool >= base_tool + 0.15, (base_tool, tuned_tool)
    assert tuned_call >= base_call + 0.15, (base_call, tuned_call)
    assert tuned_tool >= 0.9


def test_tool_choice_none_required_and_forced(client: OpenAI, model_server_tuned_model: str) -> None:
    for model in ("local-base", model_server_tuned_model):
        none = _ask(
            client, model, "Analyze customer churn for Q4 2025", tools=TOOLS, tool_choice="none"
        ).choices[0]
        assert none.finish_reason == "stop"
        assert none.message.tool_calls is None
        assert none.message.content
        forced = _ask(
            client,
            model,
            "Analyze customer churn for Q4 2025",
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "top_products"}},
        ).choices[0]
        assert forced.message.tool_calls
        assert forced.message.tool_calls[0].function.name == "top_products"
        required = _ask(
            client, model, "Who defected to competitors?", tools=TOOLS, tool_choice="required"
        ).choices[0]
        assert required.finish_reason == "tool_calls"


def test_base_model_answers_in_text_when_nothing_matches(client: OpenAI) -> None:
    choice = _ask(client, "local-base", "Who defected to competitors?", tools=TOOLS).choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert "rephrase" in (choice.message.content or "")


def test_a_tool_result_gets_a_final_answer(client: OpenAI, model_server_tuned_model: str) -> None:
    first = _ask(client, model_server_tuned_model, "Top 5 products by margin", tools=TOOLS).choices[0].message
    assert first.tool_calls
    call = first.tool_calls[0]
    messages: list[Any] = [
        {"role": "system", "content": AGENT.system_prompt},
        {"role": "user", "content": "Top 5 products by margin"},
        first.to_dict(),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"products": ["A", "B"]})},
    ]
    final = client.chat.completions.create(
        model=model_server_tuned_model, messages=messages, tools=TOOLS
    ).choices[0]
    assert final.finish_reason == "stop"
    assert final.message.content
    assert "top_products" in final.message.content
    assert '"A"' in final.message.content


def test_tuned_model_falls_back_to_base_for_tools_it_never_learned(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather forecast for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    reply = client.chat.completions.create(
        model=model_server_tuned_model,
        messages=[{"role": "user", "content": "weather forecast in Paris"}],
        tools=[weather],  # type: ignore[list-item]
    )
    calls = reply.choices[0].message.tool_calls
    assert calls
    assert calls[0].function.name == "get_weather"


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(client, "gpt-5-imaginary", "hi", tools=TOOLS)
    assert caught.value.body == {  # type: ignore[comparison-overlap]
        "message": "The model `gpt-5-imaginary` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "local-base"}, "messages"),
        ({"model": "local-base", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "local-base", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "local-base", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "local-base", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"},
            "tool_choice",
        ),
        (
            {
                "model": "local-base",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": TOOLS,
                "tool_choice": "always",
            },
            "tool_choice",
        ),
        (
            {
                "model": "local-base",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": TOOLS,
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
        ),
        (
            {
                "model": "local-base",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function"}],
            },
            "tools[0]",
        ),
        ({"model": "local-base", "messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream"),
    ],
)
def test_bad_chat_requests_are_400(model_server: Any, body: dict[str, Any], param: str) -> None:
    response = httpx.post(f"{model_server.base_url}/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_malformed_json_unknown_routes_and_methods(model_server: Any) -> None:
    base = model_server.base_url
    malformed = httpx.post(
        f"{base}/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert set(malformed.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.post(f"{base}/chat/completions", content=b"[1, 2]").status_code == 400
    missing = httpx.get(f"{base}/embeddings")
    assert (missing.status_code, missing.json()["error"]["message"]) == (
        404,
        "Invalid URL (GET /v1/embeddings)",
    )
    assert httpx.delete(f"{base}/chat/completions").status_code == 405
    assert httpx.get(f"{model_server.base_url.removesuffix('/v1')}/healthz").json()["status"] == "ok"


def test_make_openai_client_reaches_the_server(use_model_server: Any) -> None:
    from lightning.adapters.openai.client import make_openai_client
    from lightning.config import get_settings

    settings = get_settings()
    assert settings.lightning_model_server == use_model_server.base_url
    assert "local-base" in [model.id for model in make_openai_client(openai_endpoint(settings)).models.list()]


def test_an_oversized_request_body_is_a_413(tmp_path: Any) -> None:
    from lightning.adapters.modelserver.server import start_server

    with start_server(data_dir=tmp_path, max_json_bytes=4096) as small:
        client = OpenAI(base_url=small.base_url, api_key="local", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="local-base", messages=[{"role": "user", "content": "x" * 5000}]
            )
        assert caught.value.status_code == 413
        assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]
        reply = client.chat.completions.create(
            model="local-base", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].finish_reason == "stop"

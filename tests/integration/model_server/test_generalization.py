"""Through the server: a tuned model offered tools it never saw answers exactly as local-base does,
and with other tool descriptions it keeps up with local-base."""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from lightning.agent.queries import QuerySample
from tests.integration.model_server.data import agent_definition, split_samples
from tests.integration.model_server.variants import UNSEEN_NAMES, rephrased_tools, unseen_tools

AGENT = agent_definition()
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather forecast for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _call(client: OpenAI, model: str, query: str, tools: list[Any]) -> tuple[str | None, str | None]:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": query}], tools=tools
    ).choices[0]
    calls = reply.message.tool_calls
    return (calls[0].function.name, calls[0].function.arguments) if calls else (None, reply.message.content)


def _held_out(count: int) -> list[QuerySample]:
    return split_samples(300, count, seed=11)[1]  # the session's tuned model trained on seed 11


def test_a_request_offering_a_tool_the_tuned_model_never_saw_gets_base_answers(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    for tools in ([*AGENT.openai_tools(), WEATHER], unseen_tools(AGENT)):
        for sample in _held_out(25):
            assert _call(client, model_server_tuned_model, sample.query, tools) == _call(
                client, "local-base", sample.query, tools
            ), sample.query


def test_with_other_descriptions_the_tuned_model_keeps_up_with_base(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    samples = _held_out(120)
    tools = rephrased_tools(AGENT)
    base = sum(_call(client, "local-base", s.query, tools)[0] == s.tool for s in samples) / len(samples)
    tuned = sum(_call(client, model_server_tuned_model, s.query, tools)[0] == s.tool for s in samples) / len(
        samples
    )
    assert base >= 0.75
    assert tuned >= base - 0.03, (base, tuned)


def test_renamed_tools_are_answered_like_base_with_the_right_stand_in(
    client: OpenAI, model_server_tuned_model: str
) -> None:
    tools = unseen_tools(AGENT)
    sample = QuerySample(query="Forecast sales for the next 6 months", tool="sales_forecast", arguments={})
    name, _ = _call(client, model_server_tuned_model, sample.query, tools)
    assert name == UNSEEN_NAMES[sample.tool] == _call(client, "local-base", sample.query, tools)[0]

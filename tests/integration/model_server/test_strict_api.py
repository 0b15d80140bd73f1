"""The local server refuses what the service refuses, with the service's error body and status.

Every case goes through the real ``openai`` SDK (``extra_body`` sends the parameters the SDK has
no argument for), so the client-side shape is exactly what a project client would see. The
expected bodies are the service's own (sources cited in ``lightning/adapters/modelserver/rules.py``).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.integration.model_server.conftest import upload, wait_for_job
from tests.integration.model_server.data import agent_definition, example_line, split_samples

AGENT = agent_definition()
TOOLS: list[Any] = AGENT.openai_tools()
USER: list[Any] = [{"role": "user", "content": "Analyze customer churn for Q4 2025"}]


def _refused(call: Any) -> dict[str, Any]:
    """The error body of a request the server must refuse with 400."""
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error"
    return body


def _chat(client: OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "local-base")
    kwargs.setdefault("messages", USER)
    return lambda: client.chat.completions.create(**kwargs)


def _call(call_id: str = "call_1", name: str = "analyze_churn") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": '{"period": "Q4 2025"}'},
    }


# --- unknown parameters -------------------------------------------------------------------------


def test_an_unknown_chat_parameter_is_refused(client: OpenAI) -> None:
    body = _refused(_chat(client, extra_body={"temprature": 0.2}))
    assert body == {
        "message": "Unrecognized request argument supplied: temprature",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    several = _refused(_chat(client, extra_body={"functions_v2": [], "mode": "fast"}))
    assert several["message"] == "Unrecognized request arguments supplied: functions_v2, mode"


def test_an_unknown_key_inside_a_message_or_tool_is_refused(client: OpenAI) -> None:
    body = _refused(_chat(client, messages=[{"role": "user", "content": "hi", "tool_calls": [_call()]}]))
    assert (body["message"], body["param"], body["code"]) == (
        "Unknown parameter: 'messages[0].tool_calls'.",
        "messages[0].tool_calls",
        "unknown_parameter",
    )
    tool = {**TOOLS[0], "function": {**TOOLS[0]["function"], "examples": ["x"]}}
    body = _refused(_chat(client, tools=[tool]))
    assert (body["param"], body["code"]) == ("tools[0].function.examples", "unknown_parameter")


def test_the_apis_other_parameters_are_accepted(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="local-base",
        messages=USER,
        tools=TOOLS,
        temperature=0,
        top_p=1,
        seed=7,
        user="analyst",
        stop=["\n\n"],
        parallel_tool_calls=False,
        presence_penalty=0,
        frequency_penalty=0,
        logit_bias={},
    )
    assert reply.choices[0].finish_reason == "tool_calls"


def test_an_unknown_job_parameter_is_refused(client: OpenAI) -> None:
    training_file = upload(client, _jsonl(12))
    body = _refused(
        lambda: client.fine_tuning.jobs.create(
            model="local-base", training_file=training_file, extra_body={"epochs": 3}
        )
    )
    assert body == {
        "message": "Unrecognized request argument supplied: epochs",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    nested = _refused(
        lambda: client.fine_tuning.jobs.create(
            model="local-base",
            training_file=training_file,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}, "extra": 1},  # type: ignore[typeddict-unknown-key]
        )
    )
    assert (nested["message"], nested["param"], nested["code"]) == (
        "Unknown parameter: 'method.extra'.",
        "method.extra",
        "unknown_parameter",
    )


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message", "code"),
    [
        (
            "temperature",
            5,
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 5 instead.",
            "decimal_above_max_value",
        ),
        (
            "temperature",
            -0.5,
            "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -0.5 instead.",
            "decimal_below_min_value",
        ),
        (
            "top_p",
            1.5,
            "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead.",
            "decimal_above_max_value",
        ),
        (
            "max_completion_tokens",
            0,
            "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, "
            "but got 0 instead.",
            "integer_below_min_value",
        ),
        (
            "temperature",
            "hot",
            "Invalid type for 'temperature': expected a decimal, but got a string instead.",
            "invalid_type",
        ),
    ],
)
def test_numbers_outside_the_apis_range_are_refused(
    client: OpenAI, name: str, value: Any, message: str, code: str
) -> None:
    body = _refused(_chat(client, **{name: value}))
    assert body == {"message": message, "type": "invalid_request_error", "param": name, "code": code}


def test_temperature_at_the_bounds_is_accepted(client: OpenAI) -> None:
    for value in (0, 2, 1.3):
        assert client.chat.completions.create(model="local-base", messages=USER, temperature=value).choices


# --- function names -----------------------------------------------------------------------------


def _tool_named(name: str) -> dict[str, Any]:
    return {**TOOLS[0], "function": {**TOOLS[0]["function"], "name": name}}


def test_a_function_name_outside_the_pattern_is_refused(client: OpenAI) -> None:
    body = _refused(_chat(client, tools=[TOOLS[1], _tool_named("bad name!")]))
    assert body == {
        "message": "Invalid 'tools[1].function.name': string does not match pattern. Expected a string "
        "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        "type": "invalid_request_error",
        "param": "tools[1].function.name",
        "code": "invalid_value",
    }
    too_long = _refused(_chat(client, tools=[_tool_named("x" * 65)]))
    assert (too_long["param"], too_long["code"]) == ("tools[0].function.name", "string_above_max_length")
    assert "maximum length 64, but got a string with length 65" in too_long["message"]
    assert client.chat.completions.create(model="local-base", messages=USER, tools=[_tool_named("a" * 64)])


def test_a_bad_name_in_a_tool_call_is_refused(client: OpenAI) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call(name="analyze.churn")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
    ]
    body = _refused(_chat(client, messages=messages, tools=TOOLS))
    assert (body["param"], body["code"]) == ("messages[1].tool_calls[0].function.name", "invalid_value")


# --- tool messages ------------------------------------------------------------------------------


def test_a_tool_message_without_a_preceding_tool_call_is_refused(client: OpenAI) -> None:
    messages = [*USER, {"role": "tool", "tool_call_id": "call_1", "content": "{}"}]
    body = _refused(_chat(client, messages=messages, tools=TOOLS))
    assert body == {
        "message": "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
        "message with 'tool_calls'.",
        "type": "invalid_request_error",
        "param": "messages.[1].role",
        "code": None,
    }
    # answering a call two turns back is the same mistake
    late = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call()]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
        {"role": "assistant", "content": "Churn fell."},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
    ]
    assert _refused(_chat(client, messages=late, tools=TOOLS))["param"] == "messages.[4].role"


def test_a_tool_call_id_that_matches_no_call_is_refused(client: OpenAI) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("call_1")]},
        {"role": "tool", "tool_call_id": "call_2", "content": "{}"},
    ]
    body = _refused(_chat(client, messages=messages, tools=TOOLS))
    assert (body["message"], body["param"]) == (
        "Invalid parameter: 'tool_call_id' of 'call_2' not found in 'tool_calls' of previous message.",
        "messages.[2].tool_call_id",
    )


def test_an_unanswered_tool_call_is_refused(client: OpenAI) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("call_1"), _call("call_2")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
        {"role": "user", "content": "and the forecast?"},
    ]
    body = _refused(_chat(client, messages=messages, tools=TOOLS))
    assert body["message"] == (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: call_2"
    )


def test_every_call_answered_in_order_is_accepted(client: OpenAI) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("call_1"), _call("call_2")]},
        {"role": "tool", "tool_call_id": "call_2", "content": "{}"},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"churn_rate": 0.05}'},
    ]
    reply = client.chat.completions.create(model="local-base", messages=messages, tools=TOOLS)
    assert reply.choices[0].finish_reason == "stop"


# --- training files -----------------------------------------------------------------------------


def _jsonl(n: int, *, object_arguments_at: int | None = None) -> bytes:
    lines = []
    for index, sample in enumerate(split_samples(n, 0, seed=31)[0]):
        line = example_line(sample, AGENT, index)
        if index == object_arguments_at:
            function = line["messages"][2]["tool_calls"][0]["function"]
            function["arguments"] = json.loads(function["arguments"])
        lines.append(json.dumps(line))
    return ("\n".join(lines) + "\n").encode()


def test_a_training_line_whose_arguments_are_an_object_fails_the_job(client: OpenAI) -> None:
    created = client.fine_tuning.jobs.create(
        model="local-base", training_file=upload(client, _jsonl(12, object_arguments_at=4))
    )
    job, _ = wait_for_job(client, created.id)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_training_file", "training_file")
    assert job.error.message.startswith(
        "Invalid file format. Line 5: message 2: tool_calls[0].function.arguments must be a JSON-encoded "
        "string, not an object"
    )
    assert job.fine_tuned_model is None


def test_a_validation_line_whose_arguments_are_an_object_fails_the_job(client: OpenAI) -> None:
    created = client.fine_tuning.jobs.create(
        model="local-base",
        training_file=upload(client, _jsonl(12)),
        validation_file=upload(client, _jsonl(10, object_arguments_at=0), "valid.jsonl"),
    )
    job, _ = wait_for_job(client, created.id)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_validation_file", "validation_file")
    assert "Line 1: message 2: tool_calls[0].function.arguments must be a JSON-encoded string" in (
        job.error.message
    )


# --- max_completion_tokens / max_tokens -------------------------------------------------------


def test_max_completion_tokens_cuts_a_text_answer(client: OpenAI) -> None:
    full = client.chat.completions.create(model="local-base", messages=USER)
    assert full.usage is not None
    assert full.choices[0].finish_reason == "stop"
    assert full.usage.completion_tokens > 5
    cut = client.chat.completions.create(model="local-base", messages=USER, max_completion_tokens=5)
    assert cut.usage is not None
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 5
    assert cut.choices[0].message.content
    assert (full.choices[0].message.content or "").startswith(cut.choices[0].message.content)
    legacy = client.chat.completions.create(model="local-base", messages=USER, max_tokens=5)
    assert legacy.choices[0].message.content == cut.choices[0].message.content


def test_max_completion_tokens_cuts_a_tool_call(client: OpenAI) -> None:
    full = client.chat.completions.create(model="local-base", messages=USER, tools=TOOLS)
    assert full.usage is not None
    [whole] = full.choices[0].message.tool_calls or []
    cap = full.usage.completion_tokens - 3
    cut = client.chat.completions.create(
        model="local-base", messages=USER, tools=TOOLS, max_completion_tokens=cap
    )
    assert cut.usage is not None
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == cap
    [partial] = cut.choices[0].message.tool_calls or []
    assert partial.function.name == whole.function.name
    assert whole.function.arguments.startswith(partial.function.arguments)
    assert len(partial.function.arguments) < len(whole.function.arguments)
    roomy = client.chat.completions.create(
        model="local-base", messages=USER, tools=TOOLS, max_completion_tokens=full.usage.completion_tokens
    )
    assert roomy.choices[0].finish_reason == "tool_calls"

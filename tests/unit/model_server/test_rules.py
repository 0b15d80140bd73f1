"""The server's parameter lists are the API's (as the installed openai SDK declares them), and the
server counts tokens with the dataset builder's recipe; training files with object arguments fail."""

from __future__ import annotations

import json
import typing

import pytest
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionFunctionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
    completion_create_params,
)
from openai.types.fine_tuning import job_create_params

from lightning.adapters.modelserver.jobs import check_argument_strings
from lightning.adapters.modelserver.rules import CHAT_PARAMETERS, JOB_PARAMETERS, MESSAGE_KEYS
from lightning.adapters.modelserver.text import (
    count_message_tokens,
    count_tokens,
    count_tool_call_tokens,
    truncate_to_tokens,
)
from lightning.adapters.modelserver.trainer import TrainingFileError
from lightning.domain.finetune_format import TOKENS_PER_MESSAGE, example_tokens, message_tokens
from tests.integration.model_server.data import agent_definition, example_line, split_samples


def _keys(typed_dict: type) -> set[str]:
    return set(typing.get_type_hints(typed_dict))


def test_the_parameter_lists_are_the_sdks() -> None:
    # ``stream`` lives on the streaming/non-streaming subclasses of the base params.
    assert _keys(completion_create_params.CompletionCreateParamsBase) | {"stream"} == CHAT_PARAMETERS
    assert _keys(job_create_params.JobCreateParams) == JOB_PARAMETERS
    sdk_roles = {
        "system": ChatCompletionSystemMessageParam,
        "developer": ChatCompletionDeveloperMessageParam,
        "user": ChatCompletionUserMessageParam,
        "assistant": ChatCompletionAssistantMessageParam,
        "tool": ChatCompletionToolMessageParam,
        "function": ChatCompletionFunctionMessageParam,
    }
    assert set(MESSAGE_KEYS) == set(sdk_roles)
    for role, typed_dict in sdk_roles.items():
        extra = {"annotations"} if role == "assistant" else set()  # a reply's message passed back
        assert _keys(typed_dict) | extra == MESSAGE_KEYS[role], role


def test_the_server_counts_an_example_as_the_dataset_builder_does() -> None:
    agent = agent_definition()
    for index, sample in enumerate(split_samples(20, 0, seed=3)[0]):
        line = example_line(sample, agent, index)
        assert count_message_tokens(line["messages"], line["tools"]) == example_tokens(
            line["messages"], line["tools"], count_tokens
        )
    call = {"id": "c", "type": "function", "function": {"name": "sales_report", "arguments": '{"a": 1}'}}
    # a reply's tool call, without the per-message overhead the prompt side already counts
    assert count_tool_call_tokens("sales_report", '{"a": 1}') == (
        message_tokens({"tool_calls": [call]}, count_tokens) - TOKENS_PER_MESSAGE
    )


def test_truncate_to_tokens_keeps_the_longest_prefix_within_the_budget() -> None:
    text = "Churn fell two points in Q4 2025, led by EMEA enterprise accounts. " * 3
    total = count_tokens(text)
    assert truncate_to_tokens(text, total) == text
    assert truncate_to_tokens(text, 0) == ""
    for budget in (1, 2, 7, total - 1):
        cut = truncate_to_tokens(text, budget)
        assert text.startswith(cut)
        assert count_tokens(cut) <= budget
        assert count_tokens(text[: len(cut) + 1]) > budget


def test_only_tool_calls_with_non_string_arguments_fail_a_file() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "run",
            "parameters": {"type": "object", "properties": {"arguments": {"type": "string"}}},
        },
    }

    def line(arguments: object) -> str:
        call = {"id": "c1", "type": "function", "function": {"name": "run", "arguments": arguments}}
        messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
        return json.dumps({"messages": messages, "tools": [tool]})

    good = line('{"arguments": "x"}')  # a parameter named "arguments" is not a call's arguments
    check_argument_strings(f"{good}\n{good}\n".encode())
    with pytest.raises(TrainingFileError, match=r"^Invalid file format\. Line 2: message 1: tool_calls\[0\]"):
        check_argument_strings(f"{good}\n{line({'arguments': 'x'})}\n".encode())

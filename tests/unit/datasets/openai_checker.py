"""An independent checker of fine-tuning files, written from OpenAI's published rules — not from our code.

Sources: the OpenAI cookbook "Data preparation and analysis for chat model fine-tuning" (its format
error counters: data_type, missing_messages_list, message_missing_key, message_unrecognized_key,
unrecognized_role, missing_content, example_missing_assistant_message) and the fine-tuning guide's
function/tool-calling and preference (DPO) formats: an assistant message may carry ``tool_calls``
instead of content; a call is ``{"id", "type": "function", "function": {"name", "arguments"}}``
with ``arguments`` a JSON-encoded string; a ``tool`` message answers a call id with string content;
``tools`` lists ``{"type": "function", "function": {"name", "description", "parameters"}}``;
a file needs at least 10 examples.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable


def check_chat_lines(lines: Iterable[bytes | str]) -> Counter[str]:
    errors: Counter[str] = Counter()
    n = 0
    for raw in lines:
        n += 1
        try:
            ex = json.loads(raw)
        except ValueError:
            errors["invalid_json"] += 1
            continue
        if not isinstance(ex, dict):
            errors["data_type"] += 1
            continue
        messages = ex.get("messages")
        if not messages:
            errors["missing_messages_list"] += 1
            continue
        tool_names = {t["function"]["name"] for t in ex.get("tools", []) if t.get("type") == "function"}
        call_ids: set[str] = set()
        for message in messages:
            if "role" not in message or ("content" not in message and "tool_calls" not in message):
                errors["message_missing_key"] += 1
            if any(
                k not in ("role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id")
                for k in message
            ):
                errors["message_unrecognized_key"] += 1
            if message.get("role") not in ("system", "user", "assistant", "function", "tool"):
                errors["unrecognized_role"] += 1
            content = message.get("content")
            calls = message.get("tool_calls")
            if (not content and not calls) or (content is not None and not isinstance(content, str)):
                errors["missing_content"] += 1
            for call in calls or []:
                call_ids.add(call.get("id"))
                fn = call.get("function", {})
                if call.get("type") != "function" or fn.get("name") not in tool_names:
                    errors["tool_call_unknown_function"] += 1
                try:
                    if not isinstance(json.loads(fn.get("arguments")), dict):
                        errors["tool_call_arguments_not_object"] += 1
                except (TypeError, ValueError):
                    errors["tool_call_arguments_not_json"] += 1
            if message.get("role") == "tool":
                if not isinstance(content, str):
                    errors["tool_content_not_string"] += 1
                if message.get("tool_call_id") not in call_ids:
                    errors["tool_message_without_call"] += 1
        if not any(message.get("role") == "assistant" for message in messages):
            errors["example_missing_assistant_message"] += 1
    if n < 10:
        errors["fewer_than_10_examples"] += 1
    return errors


def check_dpo_lines(lines: Iterable[bytes | str]) -> Counter[str]:
    errors: Counter[str] = Counter()
    n = 0
    for raw in lines:
        n += 1
        ex = json.loads(raw)
        messages = ex.get("input", {}).get("messages")
        if not messages or messages[-1].get("role") != "user":
            errors["input_must_end_with_user"] += 1
        for key in ("preferred_output", "non_preferred_output"):
            out = ex.get(key)
            if not isinstance(out, list) or len(out) != 1 or out[0].get("role") != "assistant":
                errors[f"{key}_not_one_assistant_message"] += 1
        if ex.get("preferred_output") == ex.get("non_preferred_output"):
            errors["identical_outputs"] += 1
    if n < 10:
        errors["fewer_than_10_examples"] += 1
    return errors

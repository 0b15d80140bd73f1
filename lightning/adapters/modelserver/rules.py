"""The API's request rules, enforced as strictly as the service does, with the service's errors.

The local server stands in for Azure OpenAI / OpenAI: a request it accepts must be one the
service accepts, or a bug passes here and fails in the cloud. Each rule answers with the
service's body ``{"error": {"message", "type", "param", "code"}}`` and status (400), worded as
the service words it. Sources, per rule:

- parameter names: openai-python 1.x ``types/chat/completion_create_params.py`` and
  ``types/fine_tuning/job_create_params.py`` (the API reference's request bodies); message
  keys per role: ``types/chat/chat_completion_*_message_param.py``. A unit test holds these
  lists equal to the installed SDK's.
- unknown top-level parameter: ``Unrecognized request argument supplied: <name>`` with
  ``param``/``code`` null (chat completions; e.g. davidmigloz/langchain_dart#712, and the plural
  "Unrecognized request arguments supplied: function_call, functions" in langchain-ai/langchain#8593).
  An unknown nested key: ``Unknown parameter: 'messages[0].tool_calls'.``, ``param`` that path,
  ``code`` ``unknown_parameter`` (64bit/async-openai#386).
- numbers out of range: ``Invalid 'temperature': decimal above maximum value. Expected a value
  <= 2, but got 5 instead.``, ``param`` ``temperature``, ``code`` ``decimal_above_max_value``
  (``integer_below_min_value`` … for integers); bounds from the SDK's parameter docs
  (temperature 0–2, top_p 0–1, penalties -2–2, max tokens >= 1).
- function names: ``Invalid 'tools[0].function.name': string does not match pattern. Expected a
  string that matches the pattern '^[a-zA-Z0-9_-]+$'.``, ``code`` ``invalid_value``
  (brekkylab/ailoy#109; the same for ``messages[i].tool_calls[j].function.name``,
  mcp-use/mcp-use#90); longer than 64: ``string too long. Expected a string with maximum length
  64, but got a string with length N instead.``, ``code`` ``string_above_max_length``
  (ravitemer/mcphub.nvim#243).
- tool messages: ``Invalid parameter: messages with role 'tool' must be a response to a
  preceeding message with 'tool_calls'.`` (the service's spelling), ``param``
  ``messages.[i].role``, ``code`` null (smarter-sh/smarter#264, miurla/morphic#136); ``Invalid
  parameter: 'tool_call_id' of 'call_x' not found in 'tool_calls' of previous message.``; and
  ``An assistant message with 'tool_calls' must be followed by tool messages responding to each
  'tool_call_id'. The following tool_call_ids did not have response messages: call_x``
  (microsoft/promptflow#3130).

Used by ``app.py`` (chat completions and job creation).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

CHAT_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
"""Every body parameter of ``POST /chat/completions``; the local server uses some, accepts all."""

JOB_PARAMETERS = frozenset(
    {
        "hyperparameters",
        "integrations",
        "metadata",
        "method",
        "model",
        "seed",
        "suffix",
        "training_file",
        "validation_file",
    }
)
"""Every body parameter of ``POST /fine_tuning/jobs``."""

MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    # ``annotations`` is not a request key, but a reply's message passed back as it is (the SDK's
    # documented pattern, ``messages.append(completion.choices[0].message)``) carries it.
    "assistant": frozenset(
        {"role", "content", "refusal", "name", "audio", "tool_calls", "function_call", "annotations"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
ROLES = ("system", "assistant", "user", "function", "tool", "developer")

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
FUNCTION_NAME_MAX = 64


class ApiError(Exception):
    """An error the API reports to the caller, in its shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


# --- parameters ---------------------------------------------------------------------------------


def reject_unknown(body: dict[str, Any], known: frozenset[str]) -> None:
    """400 for body keys the API does not define (it refuses them; it never ignores them)."""
    unknown = [key for key in body if key not in known]
    if not unknown:
        return
    if len(unknown) == 1:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}")
    raise ApiError(400, f"Unrecognized request arguments supplied: {', '.join(unknown)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_number(
    body: dict[str, Any], name: str, *, low: float, high: float | None = None, integer: bool = False
) -> float | int | None:
    """The parameter's value (None when absent or null) after the API's type and range checks."""
    value = body.get(name)
    if value is None:
        return None
    kind = "integer" if integer else "decimal"
    valid_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not valid_type:
        raise ApiError(
            400,
            f"Invalid type for '{name}': expected {'an integer' if integer else 'a decimal'}, "
            f"but got {_json_type(value)} instead.",
            param=name,
            code="invalid_type",
        )
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {_shown(low)}, "
            f"but got {_shown(value)} instead.",
            param=name,
            code=f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {_shown(high)}, "
            f"but got {_shown(value)} instead.",
            param=name,
            code=f"{kind}_above_max_value",
        )
    return int(value) if integer else float(value)


def check_function_name(name: Any, param: str) -> None:
    """The API's rule for function names: ``^[a-zA-Z0-9_-]{1,64}$``."""
    if not isinstance(name, str):
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected a string, but got {_json_type(name)} instead.",
            param=param,
            code="invalid_type",
        )
    if not name:
        raise ApiError(
            400,
            f"Invalid '{param}': empty string. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            param=param,
            code="empty_string",
        )
    if len(name) > FUNCTION_NAME_MAX:
        raise ApiError(
            400,
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{FUNCTION_NAME_MAX}, but got a string with length {len(name)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if not FUNCTION_NAME.match(name):
        raise ApiError(
            400,
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
            f"pattern '{FUNCTION_NAME.pattern}'.",
            param=param,
            code="invalid_value",
        )


def _path(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith(("function-", "literal")):
            text += f".{part}" if text else str(part)
    return text


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """``model.model_validate(body)``, its first error as the API words it."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = _path(tuple(first["loc"]))
        kind = first["type"]
        if kind == "missing":
            raise ApiError(
                400,
                f"Missing required parameter: '{location}'.",
                param=location,
                code="missing_required_parameter",
            ) from None
        if kind == "extra_forbidden":
            raise ApiError(
                400, f"Unknown parameter: '{location}'.", param=location, code="unknown_parameter"
            ) from None
        if kind in _TYPE_WORDS:
            raise ApiError(
                400,
                f"Invalid type for '{location}': expected {_TYPE_WORDS[kind]}, "
                f"but got {_json_type(first.get('input'))} instead.",
                param=location,
                code="invalid_type",
            ) from None
        raise ApiError(400, f"Invalid value for '{location}': {first['msg']}.", param=location) from None


# --- messages -----------------------------------------------------------------------------------


def check_messages(messages: list[Any]) -> None:
    """Each message's role, keys and parts; then the order of tool calls and tool results."""
    for index, message in enumerate(messages):
        _check_message(index, message)
    _check_tool_order(messages)


def _check_message(index: int, message: Any) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise ApiError(
            400,
            f"Invalid type for '{where}': expected an object, but got {_json_type(message)} instead.",
            param=where,
            code="invalid_type",
        )
    role = message.get("role")
    if role not in MESSAGE_KEYS:
        supported = ", ".join(f"'{name}'" for name in ROLES[:-1]) + f", and '{ROLES[-1]}'"
        raise ApiError(
            400,
            f"Invalid value: {role!r}. Supported values are: {supported}.",
            param=f"{where}.role",
            code="invalid_value",
        )
    for key in message:
        if key not in MESSAGE_KEYS[role]:
            raise ApiError(
                400, f"Unknown parameter: '{where}.{key}'.", param=f"{where}.{key}", code="unknown_parameter"
            )
    if role == "tool" and "tool_call_id" not in message:
        raise ApiError(
            400,
            f"Missing required parameter: '{where}.tool_call_id'.",
            param=f"{where}.tool_call_id",
            code="missing_required_parameter",
        )
    content = message.get("content")
    if role != "assistant" and content is None:
        raise ApiError(
            400,
            f"Missing required parameter: '{where}.content'.",
            param=f"{where}.content",
            code="missing_required_parameter",
        )
    if (
        role == "assistant"
        and content is None
        and not message.get("tool_calls")
        and not message.get("function_call")
    ):
        raise ApiError(
            400,
            "Invalid value for 'content': expected a string, got null.",
            param=f"messages.[{index}].content",
        )
    if content is not None and not isinstance(content, str | list):
        raise ApiError(
            400,
            f"Invalid type for '{where}.content': expected one of a string or array of objects, "
            f"but got {_json_type(content)} instead.",
            param=f"{where}.content",
            code="invalid_type",
        )
    calls = message.get("tool_calls")
    if calls is not None:
        _check_tool_calls(where, calls)


def _check_tool_calls(where: str, calls: Any) -> None:
    if not isinstance(calls, list):
        raise ApiError(
            400,
            f"Invalid type for '{where}.tool_calls': expected an array, but got {_json_type(calls)} instead.",
            param=f"{where}.tool_calls",
            code="invalid_type",
        )
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise ApiError(
                400,
                f"Invalid value for '{at}': expected {{id, type: function, function: {{name, arguments}}}}.",
                param=at,
                code="invalid_value",
            )
        for key in ("id", "type"):
            if not isinstance(call.get(key), str):
                raise ApiError(
                    400,
                    f"Missing required parameter: '{at}.{key}'.",
                    param=f"{at}.{key}",
                    code="missing_required_parameter",
                )
        function = call["function"]
        check_function_name(function.get("name"), f"{at}.function.name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise ApiError(
                400,
                f"Invalid type for '{at}.function.arguments': expected a string, "
                f"but got {_json_type(arguments)} instead.",
                param=f"{at}.function.arguments",
                code="invalid_type",
            )


def _check_tool_order(messages: list[dict[str, Any]]) -> None:
    """A tool message answers a call of the assistant message just before its run of tool messages,
    and every call of that assistant message gets an answer before the conversation goes on."""
    calls: list[str] | None = None  # ids of the open assistant message's calls; None: none open
    answered: set[str] = set()
    opened_at = 0
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            call_id = message["tool_call_id"]
            if calls is None:
                raise ApiError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            if call_id not in calls:
                raise ApiError(
                    400,
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                    "previous message.",
                    param=f"messages.[{index}].tool_call_id",
                )
            answered.add(call_id)
            continue
        _all_answered(calls, answered, index)
        calls = None
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [call["id"] for call in message["tool_calls"]]
            answered = set()
            opened_at = index
    _all_answered(calls, answered, opened_at)


def _all_answered(calls: list[str] | None, answered: set[str], index: int) -> None:
    missing = [call_id for call_id in calls or [] if call_id not in answered]
    if missing:
        raise ApiError(
            400,
            "An assistant message with 'tool_calls' must be followed by tool messages responding to "
            "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(missing),
            param=f"messages.[{index}].role",
        )

"""Fine-tuning example shape, provider limits and validation rules (pure functions).

Used by the dataset builder (``lightning.services.datasets``) to shape and check
every example before anything is written, and by tests to check produced files.
The rules follow the OpenAI / Azure OpenAI fine-tuning documentation:

* chat examples are ``{"messages": [...], "tools": [...]}``; roles are ``system``,
  ``user``, ``assistant`` and ``tool``; an assistant message carries ``content``
  and/or ``tool_calls`` (``content`` may be omitted or null when it calls tools);
  tool-call ``arguments`` are a JSON *string* holding an object; a ``tool`` message
  has a ``tool_call_id`` naming an earlier call and string ``content``;
* every example needs at least one assistant message to learn from;
* a file needs at least 10 examples; each example must fit the base model's
  training context (65,536 tokens for gpt-4o-mini / gpt-4o / gpt-4.1*); each file
  at most 512 MB (the Files API limit for fine-tuning uploads; we keep one file per
  split and refuse rather than split it silently);
* preference (DPO) examples are ``{"input": {"messages", "tools"},
  "preferred_output": [assistant], "non_preferred_output": [assistant]}``.

Token counting follows OpenAI's published counting recipe for o200k_base models:
3 tokens per message, 1 per ``name``, 3 to prime the reply, and the function
definitions' own recipe (7 per function, 3 per property, 12 at the end, …).
Tool calls inside assistant messages are counted as their name and arguments
plus 3 per call (the recipe does not publish that figure; this is within a few
tokens of what the service bills). ``count`` is any ``str -> int`` counter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning.domain.dataset import Split

CountTokens = Callable[[str], int]

MIN_EXAMPLES_PER_FILE = 10
MAX_FILE_BYTES = 512 * 1024 * 1024
"""Per-file limit we enforce (OpenAI Files API / Azure OpenAI fine-tuning upload limit: 512 MB)."""

DEFAULT_TOKEN_LIMIT = 65_536
# Training context per example, by base model (OpenAI / Azure OpenAI fine-tuning docs).
# Names are matched by prefix after stripping a date suffix; unknown models get the default.
TOKEN_LIMITS: dict[str, int] = {
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-4.1-nano": 65_536,
    "gpt-4.1-mini": 65_536,
    "gpt-4.1": 65_536,
    "gpt-35-turbo": 16_385,
    "gpt-3.5-turbo": 16_385,
    "local-base": 65_536,
}

VALID_ROLES = frozenset({"system", "user", "assistant", "tool"})

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3
_FUNC_INIT, _PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 7, 3, 3, -3, 3, 12


def token_limit_for(base_model: str | None) -> int:
    """The per-example token limit for ``base_model`` (longest matching prefix; default 65,536)."""
    if not base_model:
        return DEFAULT_TOKEN_LIMIT
    name = base_model.lower()
    if name.startswith("ft:"):  # ft:gpt-4o-mini:org:suffix:id continues from its base
        name = name.split(":", 2)[1]
    best = max((key for key in TOKEN_LIMITS if name.startswith(key)), key=len, default=None)
    return TOKEN_LIMITS[best] if best else DEFAULT_TOKEN_LIMIT


_EDGE_PUNCT = " \t\n.,;:!?\"'`"


def normalize_query(text: str) -> str:
    """Lower case, collapsed whitespace, no surrounding punctuation: 'Top  10 products?' == 'top 10 products'."""
    return " ".join(text.lower().split()).strip(_EDGE_PUNCT)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) derived from ``text`` (same on every run, machine and Python)."""
    return int.from_bytes(_digest(text)[:8], "big") / 2**64


def split_for(key: str, validation_fraction: float) -> Split:
    """Deterministic split by hash of ``key`` (an episode id): stable across runs and store order."""
    return "validation" if validation_fraction > 0 and unit_hash(key) < validation_fraction else "train"


def tool_call_id(episode_id: str) -> str:
    """A deterministic tool-call id (``call_`` + 24 hex) so identical builds produce identical bytes."""
    return "call_" + _digest(episode_id)[4:16].hex()


def episode_keys(episode_id: str, validation_fraction: float) -> tuple[Split, str]:
    """``(split_for(id), tool_call_id(id))`` from one hash (the builder's hot path)."""
    digest = _digest(episode_id)
    unit = int.from_bytes(digest[:8], "big") / 2**64
    split: Split = "validation" if validation_fraction > 0 and unit < validation_fraction else "train"
    return split, "call_" + digest[4:16].hex()


def canonical_arguments(arguments: Mapping[str, Any]) -> str:
    """Tool-call arguments as compact JSON with sorted keys: one text per call, whatever the key order."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def dedupe_key(query: str, tool: str | None, arguments: Mapping[str, Any] | str) -> int:
    """64-bit key of (normalized query, tool, canonical arguments): equal requests answered equally.

    ``arguments`` is the mapping or its ``canonical_arguments`` text (the builder has it already).
    """
    canonical = arguments if isinstance(arguments, str) else canonical_arguments(arguments)
    text = f"{normalize_query(query)}\x00{tool or ''}\x00{canonical}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


# --- token counting --------------------------------------------------------------------------


def message_tokens(message: Mapping[str, Any], count: CountTokens) -> int:
    """Tokens of one chat message, overhead included (the published recipe + tool calls)."""
    total = TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key == "tool_calls":
            for call in value or ():
                function = call.get("function", {})
                total += TOKENS_PER_TOOL_CALL + count(str(function.get("name", "")))
                total += count(str(function.get("arguments", "")))
        elif key == "tool_call_id" or value is None:
            continue
        elif isinstance(value, str):
            total += count(value)
            if key == "name":
                total += TOKENS_PER_NAME
        else:
            total += count(json.dumps(value, ensure_ascii=False))
    return total


def tools_tokens(tools: Sequence[Mapping[str, Any]], count: CountTokens) -> int:
    """Tokens the function definitions add to a request (OpenAI's recipe for gpt-4o-family models)."""
    if not tools:
        return 0
    total = 0
    for tool in tools:
        function = tool.get("function", {})
        total += _FUNC_INIT
        description = str(function.get("description", "")).removesuffix(".")
        total += count(f"{function.get('name', '')}:{description}")
        properties = (function.get("parameters") or {}).get("properties") or {}
        if properties:
            total += _PROP_INIT
            for key, spec in properties.items():
                total += _PROP_KEY
                if "enum" in spec:
                    total += _ENUM_INIT
                    for item in spec["enum"]:
                        total += _ENUM_ITEM + count(str(item))
                p_description = str(spec.get("description", "")).removesuffix(".")
                total += count(f"{key}:{spec.get('type', '')}:{p_description}")
    return total + _FUNC_END


def example_tokens(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], count: CountTokens
) -> int:
    """Billed tokens of one chat example: messages + reply priming + tool definitions."""
    return sum(message_tokens(m, count) for m in messages) + REPLY_PRIMING + tools_tokens(tools, count)


# --- validation ------------------------------------------------------------------------------


def _check_tool_calls(
    calls: Any, where: str, tool_names: frozenset[str] | None
) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    ids: set[str] = set()
    if not isinstance(calls, list) or not calls:
        return [f"{where}: tool_calls must be a non-empty list"], ids
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict):
            problems.append(f"{at}: must be an object")
            continue
        if not isinstance(call.get("id"), str) or not call["id"]:
            problems.append(f"{at}: id must be a non-empty string")
        else:
            ids.add(call["id"])
        if call.get("type") != "function":
            problems.append(f"{at}: type must be 'function'")
        function = call.get("function")
        if not isinstance(function, dict):
            problems.append(f"{at}: function must be an object")
            continue
        name = function.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{at}: function.name must be a non-empty string")
        elif tool_names is not None and name not in tool_names:
            problems.append(f"{at}: function {name!r} is not one of the example's tools")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            problems.append(f"{at}: function.arguments must be a JSON string")
            continue
        try:
            parsed = json.loads(arguments)
        except ValueError:
            problems.append(f"{at}: function.arguments is not valid JSON")
            continue
        if not isinstance(parsed, dict):
            problems.append(f"{at}: function.arguments must encode a JSON object")
    return problems, ids


def _tool_names(tools: Any) -> tuple[list[str], frozenset[str] | None]:
    if tools is None:
        return [], None
    if not isinstance(tools, list):
        return ["tools must be a list"], None
    problems: list[str] = []
    names: set[str] = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            problems.append(f"tools[{i}]: must be {{'type': 'function', 'function': {{...}}}}")
            continue
        if not isinstance(function.get("name"), str):
            problems.append(f"tools[{i}]: function.name must be a string")
        else:
            names.add(function["name"])
        if "parameters" in function and not isinstance(function["parameters"], dict):
            problems.append(f"tools[{i}]: function.parameters must be a JSON schema object")
    return problems, frozenset(names)


def validate_messages(messages: Any, tools: Any = None, *, final_assistant: bool = True) -> list[str]:
    """Problems of one conversation (empty when it is valid)."""
    problems, tool_names = _tool_names(tools)
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    open_calls: set[str] = set()
    assistants = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: must be an object")
            continue
        role = message.get("role")
        if role not in VALID_ROLES:
            problems.append(f"{where}: role {role!r} is not one of system, user, assistant, tool")
            continue
        content = message.get("content")
        if role == "assistant":
            assistants += 1
            calls = message.get("tool_calls")
            if calls is not None:
                call_problems, ids = _check_tool_calls(calls, where, tool_names)
                problems.extend(call_problems)
                open_calls |= ids
            if content is None and calls is None:
                problems.append(f"{where}: an assistant message needs content or tool_calls")
            elif content is not None and not isinstance(content, str):
                problems.append(f"{where}: content must be a string or null")
        elif role == "tool":
            if not isinstance(content, str):
                problems.append(f"{where}: tool message content must be a string")
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_calls:
                problems.append(f"{where}: tool_call_id must name an earlier assistant tool call")
        elif not isinstance(content, str):
            problems.append(f"{where}: {role} message content must be a string")
        unknown = set(message) - {"role", "content", "tool_calls", "tool_call_id", "name", "weight"}
        if unknown:
            problems.append(f"{where}: unexpected keys {sorted(unknown)}")
    if final_assistant and assistants == 0:
        problems.append("the example has no assistant message to learn from")
    return problems


def validate_chat_example(example: Any) -> list[str]:
    """Problems of one supervised chat example (``{"messages", "tools"}``); empty when valid."""
    if not isinstance(example, dict):
        return ["an example must be a JSON object"]
    unknown = set(example) - {"messages", "tools", "parallel_tool_calls"}
    problems = [f"unexpected top-level keys {sorted(unknown)}"] if unknown else []
    return problems + validate_messages(example.get("messages"), example.get("tools"))


def validate_dpo_example(example: Any) -> list[str]:
    """Problems of one preference example; empty when valid."""
    if not isinstance(example, dict):
        return ["an example must be a JSON object"]
    problems: list[str] = []
    body = example.get("input")
    if not isinstance(body, dict):
        return ["input must be an object with messages"]
    tools = body.get("tools")
    problems += validate_messages(body.get("messages"), tools, final_assistant=False)
    for key in ("preferred_output", "non_preferred_output"):
        output = example.get(key)
        if not isinstance(output, list) or len(output) != 1:
            problems.append(f"{key} must be a list holding one assistant message")
            continue
        if not isinstance(output[0], dict) or output[0].get("role") != "assistant":
            problems.append(f"{key}[0] must be an assistant message")
            continue
        problems += [f"{key}: {p}" for p in validate_messages(output, tools)]
    if example.get("preferred_output") == example.get("non_preferred_output"):
        problems.append("preferred_output and non_preferred_output are identical")
    return problems

"""The dataset builder's shaping rules: chat examples as JSON lines, redacted, capped, counted, checked.

Used by ``lightning.services.datasets`` only. ``ChatBuilder`` turns filtered episodes (as plain
tuples) into JSONL lines — redaction, tool-result cap, token counting, split by id hash — and
writes them through the ``DatasetWork`` port; where the bytes go and on how many cores is the
``DatasetWriter`` adapter's business (``lightning/adapters/files/writer.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lightning.domain.dataset import Split
from lightning.domain.errors import InvalidInput
from lightning.domain.finetune_format import (
    MAX_FILE_BYTES,
    MIN_EXAMPLES_PER_FILE,
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_TOOL_CALL,
    episode_keys,
    message_tokens,
    tool_call_id,
    tools_tokens,
    validate_chat_example,
)
from lightning.domain.redaction import may_contain_sensitive, redact_text, redact_value, truncate_text
from lightning.ports.writer import DatasetWork, SplitFile

FULLY_VALIDATED = 1000
"""The first examples of every build are re-parsed from their JSON line and validated in full."""
_DUMPS_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# Tool-call arguments with sorted keys: the same call always has the same text (and de-duplicates).
_DUMPS_ARGS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode
_quote = json.encoder.encode_basestring  # C speed; non-ASCII kept as is

ExampleKind = Literal[
    "auto",  # an auto-labeled episode at or above the reward line, as it is
    "confirmed",  # a person confirmed the agent's call
    "corrected",  # a person's call, not the agent's (no tool result or answer: they were for the other call)
]

Item = tuple[str, float, str, str, str, str, bool, "str | None", bool, ExampleKind]
"""One usable, de-duplicated episode as plain values (cheap to send to a helper process):
(id, reward, query, tool, arguments JSON text, result text, result was a string, response,
may hold something to redact, kind)."""


@dataclass(frozen=True)
class ChatConfig:
    """What the chat builder needs from the request (plain values: it may run in another process)."""

    name: str
    validation_split: float
    token_limit: int
    max_tool_result_chars: int
    max_examples: int | None


@dataclass
class Tally:
    dropped: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    tools: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    corrected: int = 0
    confirmed: int = 0
    reward_sum: float = 0.0
    reward_min: float = 1.0
    reward_max: float = 0.0
    rewarded: int = 0
    notes: list[str] = field(default_factory=list)

    def reward(self, value: float) -> None:
        self.reward_sum += value
        self.reward_min = min(self.reward_min, value)
        self.reward_max = max(self.reward_max, value)
        self.rewarded += 1


def sensitive(query: str, args_text: str, *, result: str, response: str | None) -> bool:
    """One cheap pre-check over all of an episode's text: can any redaction pattern match?"""
    return may_contain_sensitive(f"{query}\x00{args_text}\x00{result}\x00{response or ''}")


def dumps_args(arguments: Any) -> str:
    """Tool-call arguments as compact JSON with sorted keys (one text per call, whatever the key order)."""
    return _DUMPS_ARGS(arguments)


def result_text(result: Any) -> str:
    """The tool message content: strings as they are, anything else as compact JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    return _DUMPS_COMPACT(result)


class Shaper:
    """Redaction and the tool-result cap for one example's variable parts."""

    def __init__(self, max_tool_result_chars: int, tally: Tally) -> None:
        self._cap = max_tool_result_chars
        self._tally = tally

    def _note(self, kind: str) -> None:
        self._tally.redactions[kind] += 1

    def parts(
        self, query: str, arguments: dict[str, Any], result: Any, response: str | None
    ) -> tuple[str, str, str, str | None]:
        """``parts_text`` from the episode's values."""
        args_text, result_value = dumps_args(arguments), result_text(result)
        return self.parts_text(
            query,
            args_text,
            result_value,
            result is None or isinstance(result, str),
            response,
            sensitive(query, args_text, result=result_value, response=response),
        )

    def parts_text(
        self,
        query: str,
        args_text: str,
        result: str,
        result_is_text: bool,
        response: str | None,
        suspect: bool,
    ) -> tuple[str, str, str, str | None]:
        """(user query, arguments JSON text, tool result text, final response), redacted and capped.

        ``suspect`` is ``sensitive(...)`` of the same values: when False (most episodes) the patterns
        never run. JSON values are redacted value by value (so secret-named keys are caught and the
        JSON stays valid), then re-serialized.
        """
        if suspect:
            note = self._note
            query = redact_text(query, note)
            args_text = dumps_args(redact_value(json.loads(args_text), note))
            if result_is_text:
                result = redact_text(result, note)
            else:
                result = result_text(redact_value(json.loads(result), note))
            if response is not None:
                response = redact_text(response, note)
        if len(result) > self._cap:
            result = truncate_text(result, self._cap)
            self._tally.truncated += 1
        return query, args_text, result, response


def chat_messages(
    episode_id: str, query: str, *, tool: str, args_text: str, result_text: str, response: str | None
) -> list[dict[str, Any]]:
    """user → assistant with a native tool call → (when there is a final answer) tool result → assistant."""
    call_id = tool_call_id(episode_id)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": query},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": tool, "arguments": args_text}}
            ],
        },
    ]
    if response:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result_text})
        messages.append({"role": "assistant", "content": response})
    return messages


class ChatLines:
    """Writes chat examples as JSON text directly (the hot path: ~1M examples a minute).

    The system message and tool schemas are the same in every line: serialized, validated and
    token-counted once. Per example only the variable strings are encoded and counted, with the same
    overheads ``finetune_format.example_tokens`` applies (a unit test holds the two equal).
    """

    def __init__(self, prompt: str, tools: list[dict[str, Any]], count: Callable[[str], int]) -> None:
        system = {"role": "system", "content": prompt}
        problems = validate_chat_example(
            {"messages": [system, {"role": "assistant", "content": "x"}], "tools": tools}
        )
        if problems:
            raise InvalidInput(f"the agent definition cannot make valid examples: {problems[0]}")
        self.head = '{"messages":[' + _DUMPS_COMPACT(system)
        self.tail = '],"tools":' + _DUMPS_COMPACT(tools) + "}\n"
        self.constant_tokens = message_tokens(system, count) + REPLY_PRIMING + tools_tokens(tools, count)
        self._count = count
        self._role = {role: count(role) for role in ("user", "assistant", "tool")}
        self._names: dict[str, int] = {}

    def line(
        self, call_id: str, query: str, tool: str, args_text: str, result_text: str, response: str | None
    ) -> tuple[str, int]:
        """The example's JSON line (with its newline) and its billed tokens."""
        count = self._count
        role = self._role
        name_tokens = self._names.get(tool)
        if name_tokens is None:
            name_tokens = self._names[tool] = count(tool)
        tokens = (
            self.constant_tokens
            + TOKENS_PER_MESSAGE + role["user"] + count(query)
            + TOKENS_PER_MESSAGE + role["assistant"] + TOKENS_PER_TOOL_CALL + name_tokens + count(args_text)
        )  # fmt: skip
        text = (
            f'{self.head},{{"role":"user","content":{_quote(query)}}},{{"role":"assistant","tool_calls":'
            f'[{{"id":"{call_id}","type":"function","function":{{"name":{_quote(tool)},'
            f'"arguments":{_quote(args_text)}}}}}]}}'
        )
        if response:
            tokens += TOKENS_PER_MESSAGE + role["tool"] + count(result_text)
            tokens += TOKENS_PER_MESSAGE + role["assistant"] + count(response)
            text += (
                f',{{"role":"tool","tool_call_id":"{call_id}","content":{_quote(result_text)}}}'
                f',{{"role":"assistant","content":{_quote(response)}}}'
            )
        return text + self.tail, tokens


def too_large(split: str, examples: int, *, name: str) -> InvalidInput:
    limit_mb = MAX_FILE_BYTES // (1024 * 1024)
    suggestion = max(MIN_EXAMPLES_PER_FILE, int(examples * 0.9))
    return InvalidInput(
        f"the {split} file of {name!r} would exceed the provider's {limit_mb} MB file limit "
        f"after {examples:,} examples: pass --max-examples {suggestion:,} or narrow --since/--until",
        field="max_examples",
    )


def finish_splits(work: DatasetWork, tally: Tally, *, name: str) -> dict[Split, SplitFile]:
    """Close the files and apply the validation-size rule; returns the files that exist.

    A validation split under the provider's minimum of 10 examples is appended to train (and a note
    says so) rather than uploaded as a file the provider would refuse.
    """
    files = work.finish()
    validation = files.get("validation")
    if validation is not None and validation.examples < MIN_EXAMPLES_PER_FILE:
        moved = work.merge("validation", into="train")
        tally.notes.append(
            f"validation split had {moved} example(s), fewer than the provider's minimum of "
            f"{MIN_EXAMPLES_PER_FILE}: they were added to train and no validation file was written"
        )
        files = work.finish()
        if files["train"].nbytes > MAX_FILE_BYTES:
            raise too_large("train", files["train"].examples, name=name)
    return files


class ChatBuilder:
    """Shapes, counts, checks and writes chat examples, in the order the episodes come."""

    def __init__(
        self,
        config: ChatConfig,
        prompt: str,
        tools: list[dict[str, Any]],
        count: Callable[[str], int],
        work: DatasetWork,
    ) -> None:
        self.config = config
        self.tally = Tally()
        self.work = work
        self.lines = ChatLines(prompt, tools, count)
        self.shaper = Shaper(config.max_tool_result_chars, self.tally)
        self.kept = 0
        self.full = False

    def add(self, item: Item) -> bool:
        """Take one usable episode; False once ``max_examples`` are kept (later items are ignored)."""
        if self.full:
            return False
        episode_id, reward, query, tool, raw_args, raw_result, result_is_text, response, suspect, kind = item
        user_query, args_text, result, final = self.shaper.parts_text(
            query, raw_args, raw_result, result_is_text, response, suspect
        )
        split, call_id = episode_keys(episode_id, self.config.validation_split)
        text, tokens = self.lines.line(call_id, user_query, tool, args_text, result, final)
        if tokens > self.config.token_limit:
            self.tally.dropped["over_token_limit"] += 1
            return True
        if self.kept < FULLY_VALIDATED:
            # Examples are valid by construction; the first ones are re-parsed and checked in full so a
            # construction bug can never reach the provider unnoticed.
            problems = validate_chat_example(json.loads(text))
            if problems:
                raise InvalidInput(f"episode {episode_id} makes an invalid example: {'; '.join(problems)}")
        writer = self.work.sink(split)
        writer.write(text.encode("utf-8", "replace"), episode_id + "\n", tokens)
        if writer.nbytes > MAX_FILE_BYTES:
            raise too_large(split, writer.examples, name=self.config.name)
        if kind == "corrected":
            self.tally.corrected += 1  # a person's call: the agent's reward does not describe it
        else:
            self.tally.confirmed += kind == "confirmed"
            self.tally.reward(reward)
        self.tally.tools[tool] += 1
        self.kept += 1
        if self.config.max_examples is not None and self.kept >= self.config.max_examples:
            self.tally.notes.append(
                f"stopped at --max-examples {self.config.max_examples:,} (newest episodes kept)"
            )
            self.full = True
            return False
        return True

    def finish(self) -> tuple[dict[Split, SplitFile], Tally]:
        return finish_splits(self.work, self.tally, name=self.config.name), self.tally

"""Text helpers shared by the base and the fine-tuned model: tools, words, argument rules, tokens.

``ToolDef`` is a tool as a chat request (or a training example) declares it.
``extract_argument`` holds the *reading* rules — values a request states
literally (periods like "Q4 2025", enum words, integers such as "top 5" or
"the next 18 months"). Both models use them; only the fine-tuned one learns
what to do when the text does not state a value, or states it in other words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lightning.domain.finetune_format import TOKENS_PER_TOOL_CALL, example_tokens

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "give",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "show",
        "tell",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "this",
        "to",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "e",
        "g",
        "eg",
        "such",
        "each",
    ]
)

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class ToolDef:
    """A function tool from a request's ``tools`` (name, description, JSON-schema parameters)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props = self.parameters.get("properties") or {}
        return {name: spec for name, spec in props.items() if isinstance(spec, dict)}

    @property
    def required(self) -> list[str]:
        return [name for name in self.parameters.get("required") or [] if isinstance(name, str)]

    @classmethod
    def from_openai(cls, tool: Any) -> ToolDef:
        """Parse ``{"type": "function", "function": {...}}``; ``ValueError`` says what is wrong."""
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ValueError("each tool must be an object with type 'function'")
        function = tool.get("function")
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            raise ValueError("each tool needs function.name")
        parameters = function.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError(f"function.parameters of tool {function['name']!r} must be a JSON schema object")
        description = function.get("description") or ""
        return cls(name=function["name"], description=str(description), parameters=parameters)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A very light stemmer (plurals, -ing, -ed): enough for lexical matching, deliberately naive."""
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + replacement
    return word


def content_words(text: str) -> list[str]:
    return [stem(word) for word in words(text) if word not in STOPWORDS and len(word) > 1]


def message_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


# --- argument reading rules -----------------------------------------------------------------

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_PERIOD = re.compile(
    r"\b(?:"
    r"(?P<q>q[1-4])\s*(?P<qy>20\d\d)"
    r"|(?P<h>h[12])\s*(?P<hy>20\d\d)"
    r"|(?P<m>" + _MONTHS + r")\s+(?P<my>20\d\d)"
    r"|(?P<rel>the\s+(?:last|past|next)\s+\d+\s+(?:days|weeks|months|years))"
    r"|(?P<rel2>(?:last|this|next|previous)\s+(?:week|month|quarter|year))"
    r"|(?P<ytd>year\s+to\s+date|ytd)"
    r"|(?P<y>20\d\d)"
    r")\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "hundred": 100,
}
_INTEGER = re.compile(
    r"\b(?P<num>\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")\b(?:\s+(?P<unit>years?|months?))?",
    re.IGNORECASE,
)


def find_period(text: str) -> str | None:
    """The first period the text states, in the user's words (normalised case: "Q4 2025", "last quarter")."""
    match = _PERIOD.search(text)
    if match is None:
        return None
    groups = match.groupdict()
    if groups["q"]:
        return f"{groups['q'].upper()} {groups['qy']}"
    if groups["h"]:
        return f"{groups['h'].upper()} {groups['hy']}"
    if groups["m"]:
        return f"{groups['m'].capitalize()} {groups['my']}"
    if groups["ytd"]:
        return "year to date"
    value = groups["rel"] or groups["rel2"] or groups["y"]
    return " ".join(value.lower().split()) if value else None


def _strip_periods(text: str) -> str:
    """Remove past periods so their digits ("Q4 2025", "the last 6 months") are not read as counts.

    Forward-looking spans ("the next 18 months") stay: they are horizons.
    """

    def replace(match: re.Match[str]) -> str:
        return match.group(0) if "next" in match.group(0).lower() else " "

    return _PERIOD.sub(replace, text)


def find_integer(text: str, schema: dict[str, Any]) -> int | None:
    """The first integer the text states within the schema's bounds ("top 5", "18 months", "two years")."""
    minimum = schema.get("minimum")
    maximum = schema.get("maximum")
    for match in _INTEGER.finditer(_strip_periods(text)):
        raw = match.group("num").lower()
        value = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        unit = (match.group("unit") or "").lower()
        if unit.startswith("year"):
            value *= 12
        if isinstance(minimum, int | float) and value < minimum:
            continue
        if isinstance(maximum, int | float) and value > maximum:
            continue
        return value
    return None


def find_enum(text: str, values: list[Any]) -> Any | None:
    """The enum value the text names as a whole word (the first by position when it names several)."""
    lowered = text.lower()
    best: tuple[int, Any] | None = None
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        match = re.search(r"\b" + re.escape(value.lower()) + r"\b", lowered)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), value)
    return None if best is None else best[1]


def is_period_argument(name: str, schema: dict[str, Any]) -> bool:
    return "period" in name.lower() or "period" in str(schema.get("description", "")).lower()


def extract_argument(name: str, schema: dict[str, Any], text: str) -> Any | None:
    """The value of argument ``name`` that ``text`` states literally, or None."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return find_enum(text, enum)
    kind = schema.get("type")
    if kind in {"integer", "number"}:
        return find_integer(text, schema)
    if kind == "string" and is_period_argument(name, schema):
        return find_period(text)
    return None


def normalize_value(value: Any, schema: dict[str, Any]) -> Any:
    """A value in the schema's type, for comparing a prediction with an expected argument."""
    kind = schema.get("type")
    try:
        if kind == "integer" and not isinstance(value, bool):
            return int(value)
        if kind == "number" and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        return value
    if isinstance(value, str):
        return value.strip()
    return value


def arguments_equal(tool: ToolDef | None, predicted: dict[str, Any], expected: dict[str, Any]) -> bool:
    props = tool.properties if tool else {}
    keys = set(predicted) | set(expected)
    return all(
        normalize_value(predicted.get(key), props.get(key, {}))
        == normalize_value(expected.get(key), props.get(key, {}))
        for key in keys
    )


# --- tokens -------------------------------------------------------------------------------------
#
# One counter for the dataset builder and the server: the same o200k_base counter
# (``adapters.tokens.O200kTokenCounter``) and the same billing recipe
# (``domain.finetune_format.message_tokens`` / ``tools_tokens``), so a job's ``trained_tokens``
# is the dataset's Token Count times the epochs (tests/integration/model_server/test_tokens.py).


@lru_cache(maxsize=1)
def _counter() -> Any:
    from lightning.adapters.tokens import O200kTokenCounter

    return O200kTokenCounter()


@lru_cache(maxsize=65536)
def count_tokens(text: str) -> int:
    """o200k_base tokens of ``text`` (cached: system prompts and tool schemas repeat in every example)."""
    return int(_counter().count(text)) if text else 0


def count_message_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """Billed tokens of a conversation and its tools: ``finetune_format.example_tokens``, o200k_base."""
    return example_tokens(messages, tools or [], count_tokens)


def count_tool_call_tokens(name: str, arguments: str) -> int:
    """Completion tokens of one tool call, as ``finetune_format.message_tokens`` counts a call."""
    return TOKENS_PER_TOOL_CALL + count_tokens(name) + count_tokens(arguments)


def truncate_to_tokens(text: str, budget: int) -> str:
    """The longest prefix of ``text`` with at most ``budget`` tokens (what a max-token cut leaves)."""
    if budget <= 0:
        return ""
    if count_tokens(text) <= budget:
        return text
    count = _counter().count  # not count_tokens: prefixes would flood its cache
    low, high = 0, len(text)  # count(text[:low]) <= budget < count(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if count(text[:middle]) <= budget:
            low = middle
        else:
            high = middle
    return text[:low]

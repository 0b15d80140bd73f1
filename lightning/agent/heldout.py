"""Held-out analytics requests with known answers, written by hand — never generated.

``data/heldout_queries.jsonl`` holds requests for the analytics agents worded the
way people ask (idioms, typos, long context, odd word order, terse shorthand) and
deliberately *not* derived from the templates and vocabulary of ``queries.py`` nor
from the rubric's intents. About a fifth are hard negatives: a generic phrase points
at one tool while a decisive word points at another ("What will revenue look like in
the western region over the coming half year?" is a forecast, not a sales report).

Each line is ``{"query", "expected_tool", "expected_arguments", "family"}``; the call
follows the tool schemas of ``lightning/agents/*.yaml`` and the conventions of
``queries.TOOL_DEFAULTS`` (an unstated value takes the default; periods are written
in their canonical form: "Q4 2025", "last quarter", "the last 6 months", "year to date").

Use it only to *measure* (``bench/bench_judge.py``, ``bench/bench_model_server.py``):
nothing may be tuned on it, or it stops being held out.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.agent.queries import QuerySample
from lightning.agent.sample_data import AS_OF, DATA_DIR
from lightning.agent.tools import parse_period
from lightning.domain.errors import InvalidInput

__all__ = ["HELDOUT_FILE", "HeldoutQuery", "calls_agree", "heldout_queries", "heldout_samples"]

HELDOUT_FILE = DATA_DIR / "heldout_queries.jsonl"

Family = Literal[
    "everyday",  # a plain request in everyday words
    "idiom",  # an idiom or slang ("about to walk", "fly off the shelves")
    "typo",  # misspelled words ("chrun", "forcast", "revnue")
    "context",  # a longer message with background around the request
    "terse",  # shorthand ("sales next 6 mo", "risk tiers - medium")
    "word_order",  # the value or subject first ("For H1 2025, what did the east ring up?")
    "indirect",  # the need is implied, not named ("Why are people leaving?")
    "mixed_cue",  # a report-like phrase that is really a forecast ("sales for next month")
    "hard_negative",  # a generic phrase points at one tool, a decisive word at another
]


class HeldoutQuery(BaseModel):
    """One held-out request and the call that correctly answers it."""

    model_config = ConfigDict(frozen=True)

    query: str = Field(description="The request, as a user would send it.")
    expected_tool: str = Field(description="The tool that answers it.")
    expected_arguments: dict[str, Any] = Field(description="Its arguments, valid under the tool's schema.")
    family: Family = Field(description="How the request is worded.")

    def sample(self) -> QuerySample:
        return QuerySample(
            query=self.query,
            tool=self.expected_tool,
            arguments=dict(self.expected_arguments),
            style="heldout",
        )


@lru_cache(maxsize=1)
def _load() -> tuple[HeldoutQuery, ...]:
    lines = HELDOUT_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(HeldoutQuery.model_validate(json.loads(line)) for line in lines if line.strip())


def heldout_queries() -> list[HeldoutQuery]:
    """Every held-out request with its family, in file order."""
    return list(_load())


def heldout_samples() -> list[QuerySample]:
    """The held-out requests as ``QuerySample``s (style ``"heldout"``), in file order."""
    return [query.sample() for query in _load()]


def _same_period(left: Any, right: Any) -> bool:
    if left == right:
        return True
    if not isinstance(left, str) or not isinstance(right, str):
        return False
    try:
        return parse_period(left, as_of=AS_OF).months == parse_period(right, as_of=AS_OF).months
    except InvalidInput:
        return False


def calls_agree(
    tool: str | None, arguments: dict[str, Any], expected_tool: str, expected_arguments: dict[str, Any]
) -> bool:
    """Whether a call is the known answer: the same tool and arguments that give the same result.

    Periods agree when they cover the same months ("previous quarter" is "last quarter");
    every other value must be equal. Ground truth for benchmarks, not a judge.
    """
    if tool != expected_tool or set(arguments) != set(expected_arguments):
        return False
    for name, expected in expected_arguments.items():
        value = arguments[name]
        if name == "period":
            if not _same_period(value, expected):
                return False
        elif value != expected or type(value) is not type(expected):
            return False
    return True

"""``local-base``: the untrained base model (zero-shot tool choice by lexical similarity).

It reads the request, the tool names and descriptions (and the system prompt's
hints, the way an LLM would), and picks the tool whose words best match the
request, weighting rare words more (IDF over the tools). Arguments are the
values the request states literally (``text.extract_argument``); otherwise a
guess from the schema. It is deliberately only as good as word overlap: a
paraphrase that shares no words with the descriptions ("Which clients are
likely to leave us?") gets a wrong tool or no tool — which is what
fine-tuning fixes. Called by the app's chat route and by job evaluation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lightning.adapters.modelserver.text import ToolDef, content_words, extract_argument

BASE_MODEL = "local-base"


@dataclass(frozen=True)
class Prediction:
    """A model's answer: a tool and its arguments, or no tool (then ``content`` says why)."""

    tool: str | None
    arguments: dict[str, Any]
    content: str | None = None
    confidence: float = 0.0


def _tool_document(tool: ToolDef, system_prompt: str) -> list[str]:
    text = [tool.name.replace("_", " "), tool.description]
    text.extend(str(spec.get("description", "")) for spec in tool.properties.values())
    # The prompt often says which tool is for what ("analyze_churn for customer churn and retention, …").
    for clause in re.split(r"[,;.]", system_prompt):
        if tool.name in clause:
            text.append(clause.replace(tool.name, " "))
    return content_words(" ".join(text))


def guess_argument(name: str, spec: dict[str, Any]) -> Any:
    """What a model with no training puts in for a value the request does not state."""
    if "default" in spec:
        return spec["default"]
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return "all" if "all" in enum else enum[0]
    kind = spec.get("type")
    if kind in {"integer", "number"}:
        low = spec.get("minimum", 1)
        high = spec.get("maximum", 100)
        return int(min(max(5, low), high))
    if kind == "boolean":
        return False
    examples = re.findall(r"'([^']+)'", str(spec.get("description", "")))
    return examples[0] if examples else ""


def fill_arguments(tool: ToolDef, query: str) -> dict[str, Any]:
    """Arguments for ``tool``: stated values where the text has them, schema guesses otherwise."""
    arguments: dict[str, Any] = {}
    for name, spec in tool.properties.items():
        value = extract_argument(name, spec, query)
        if value is None and name not in tool.required:
            continue
        arguments[name] = guess_argument(name, spec) if value is None else value
    return arguments


_Index = tuple[dict[str, Counter[str]], dict[str, float]]
_INDEX_CACHE_SIZE = 256


def _signature(tools: list[ToolDef], system_prompt: str) -> tuple[Any, ...]:
    """What a tool index depends on: names, descriptions, parameter descriptions and the prompt."""
    return (
        system_prompt,
        tuple(
            (
                tool.name,
                tool.description,
                tuple(str(spec.get("description", "")) for spec in tool.properties.values()),
            )
            for tool in tools
        ),
    )


class ZeroShotModel:
    """The base model; stateless (it only remembers the word index of tool sets it has seen)."""

    name = BASE_MODEL

    def __init__(self) -> None:
        self._indexes: dict[tuple[Any, ...], _Index] = {}

    def _index(self, tools: list[ToolDef], system_prompt: str) -> _Index:
        """Each tool's words and every word's IDF over the tools: the same for every query of a request."""
        key = _signature(tools, system_prompt)
        found = self._indexes.get(key)
        if found is None:
            documents = {tool.name: Counter(_tool_document(tool, system_prompt)) for tool in tools}
            df: Counter[str] = Counter()
            for document in documents.values():
                df.update(set(document))
            idf = {word: math.log(1 + len(tools) / count) for word, count in df.items()}
            if len(self._indexes) >= _INDEX_CACHE_SIZE:
                self._indexes.clear()
            found = self._indexes[key] = (documents, idf)
        return found

    def scores(self, query: str, tools: list[ToolDef], system_prompt: str = "") -> dict[str, float]:
        """How well each tool's words match the request (summed IDF of shared words; 0: none shared)."""
        documents, idf = self._index(tools, system_prompt)
        query_words = set(content_words(query))
        # fsum: the same total whatever order the set yields its words in (no process-dependent ties).
        return {
            tool.name: math.fsum(idf[word] for word in query_words if word in documents[tool.name])
            for tool in tools
        }

    def rank(self, query: str, tools: list[ToolDef], system_prompt: str = "") -> list[tuple[float, ToolDef]]:
        scores = self.scores(query, tools, system_prompt)
        return sorted(((scores[tool.name], tool) for tool in tools), key=lambda item: -item[0])

    def predict(
        self,
        query: str,
        tools: list[ToolDef],
        *,
        system_prompt: str = "",
        forced: str | None = None,
        required: bool = False,
    ) -> Prediction:
        if not tools:
            return Prediction(tool=None, arguments={}, content=_no_tools_reply(query))
        if forced is not None:
            tool = next(tool for tool in tools if tool.name == forced)
            return Prediction(tool=tool.name, arguments=fill_arguments(tool, query), confidence=1.0)
        ranked = self.rank(query, tools, system_prompt)
        best_score, best = ranked[0]
        if best_score <= 0 and not required:
            # No word in common with any tool: a base model asks instead of guessing.
            names = ", ".join(tool.name for tool in tools)
            return Prediction(
                tool=None,
                arguments={},
                content=f"I'm not sure which analysis you need. I can run: {names}. Could you rephrase?",
            )
        total = sum(score for score, _ in ranked) or 1.0
        return Prediction(
            tool=best.name, arguments=fill_arguments(best, query), confidence=best_score / total
        )


def _no_tools_reply(query: str) -> str:
    return f"I can't look that up without tools. You asked: {query.strip()[:200]}"

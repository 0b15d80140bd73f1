"""RubricEvaluator: the deterministic ``task_adherence`` evaluator used when no judge model is configured.

Built by ``Container.evaluator()`` (``--evaluator rubric``, or ``task_adherence`` with no
``AZURE_OPENAI_JUDGE_DEPLOYMENT``). It scores an episode against its agent's rubric
(``lightning/agents/*.yaml``) on the workshop's reward guideline bands:

=========  ==========  ==============================================================
band       reward      when
=========  ==========  ==============================================================
excellent  0.90–1.00   expected tool, every required argument valid, result has every
                       ``result_keys`` entry, no error (1.0 when every argument value is
                       stated in the query, 0.9 when defaults were filled in)
good       0.70–0.89   expected tool, mostly complete (completeness ≥ 0.5)
acceptable 0.50–0.69   expected tool but largely incomplete; or a valid tool for a query
                       no rubric intent matches (the choice cannot be verified)
poor       0.30–0.49   another tool whose intents the query also matches (recoverable)
failed     0.00–0.29   wrong tool, no tool call, unknown tool, or an error
=========  ==========  ==============================================================

Completeness is the mean of the argument fraction (required arguments present and valid
against the tool's JSON schema, minus unknown arguments) and the result fraction
(``result_keys`` present). The expected tool is the rule whose intents best match the
normalized query (multi-word intents weigh their word count; ties go to the intent seen
first in the query). Intent matching is compiled once per agent into one regex.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning.config import Settings
from lightning.domain.agent import AgentDefinition, RubricRule, ToolSpec
from lightning.domain.episode import Episode
from lightning.ports.evaluator import Evaluation

VERSION = "rubric-1"
_CACHE_SIZE = 20_000
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space (``"At-risk?"`` → ``"at risk"``)."""
    return _NON_WORD.sub(" ", text.lower()).strip()


@dataclass(frozen=True)
class _CompiledRubric:
    agent: AgentDefinition
    pattern: re.Pattern[str] | None
    rules_by_intent: dict[str, tuple[int, ...]]
    weights: dict[str, int]
    rules: tuple[RubricRule, ...]
    tools: dict[str, ToolSpec]
    # Agents see the same requests again and again: remember each raw query's match (bounded).
    cache: dict[str, tuple[str, RubricRule | None, dict[str, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, agent: AgentDefinition) -> _CompiledRubric:
        rules_by_intent: dict[str, list[int]] = {}
        for index, rule in enumerate(agent.rubric.rules):
            for intent in rule.intents:
                key = normalize(intent)
                if key and index not in rules_by_intent.setdefault(key, []):
                    rules_by_intent[key].append(index)
        # Longest first, so "sales report" wins over "sales" at the same position.
        alternatives = sorted(rules_by_intent, key=lambda k: (-len(k), k))
        pattern = (
            re.compile(r"\b(?:" + "|".join(re.escape(a) for a in alternatives) + r")\b")
            if alternatives
            else None
        )
        return cls(
            agent=agent,
            pattern=pattern,
            rules_by_intent={k: tuple(v) for k, v in rules_by_intent.items()},
            weights={k: k.count(" ") + 1 for k in rules_by_intent},
            rules=tuple(agent.rubric.rules),
            tools={tool.name: tool for tool in agent.tools},
        )

    def lookup(self, query: str) -> tuple[str, RubricRule | None, dict[str, int]]:
        """(normalized query, best rule, intent score per tool) for a raw query, memoized."""
        found = self.cache.get(query)
        if found is None:
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            normalized = normalize(query)
            found = self.cache[query] = (normalized, *self.match(normalized))
        return found

    def match(self, normalized_query: str) -> tuple[RubricRule | None, dict[str, int]]:
        """The best rule for a normalized query and every matching tool's intent score."""
        if self.pattern is None:
            return None, {}
        scores: dict[int, int] = {}
        first_seen: dict[int, int] = {}
        for found in self.pattern.finditer(normalized_query):
            key = found.group(0)
            for index in self.rules_by_intent[key]:
                scores[index] = scores.get(index, 0) + self.weights[key]
                first_seen.setdefault(index, found.start())
        if not scores:
            return None, {}
        best = min(scores, key=lambda i: (-scores[i], first_seen[i], i))
        return self.rules[best], {self.rules[i].tool: s for i, s in scores.items()}


def _valid(value: Any, schema: dict[str, Any]) -> bool:
    """The small part of JSON Schema tool arguments use: type, enum, minimum, maximum."""
    if value is None or value == "":
        return False
    kind = schema.get("type")
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return False
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return False
    if kind == "string" and not isinstance(value, str):
        return False
    if kind == "boolean" and not isinstance(value, bool):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    return True


def _as_mapping(result: Any) -> dict[str, Any] | None:
    if isinstance(result, dict):
        return result
    if isinstance(result, str) and result.lstrip().startswith("{"):
        try:
            parsed = json.loads(result)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


_normalized_values: dict[str, str] = {}


def _stated(value: Any, padded_query: str) -> bool:
    """Whether an argument value appears, as whole words, in the normalized query padded with spaces."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    raw = str(value)
    text = _normalized_values.get(raw)
    if text is None:
        if len(_normalized_values) >= _CACHE_SIZE:
            _normalized_values.clear()
        text = _normalized_values[raw] = normalize(raw)
    return bool(text) and f" {text} " in padded_query


class RubricEvaluator:
    """Scores episodes with the agent's rubric; deterministic and fast (no I/O)."""

    name = "task_adherence"
    version = VERSION

    def __init__(self) -> None:
        self._compiled: dict[str, _CompiledRubric] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RubricEvaluator:
        del settings
        return cls()

    def _rubric(self, agent: AgentDefinition) -> _CompiledRubric:
        compiled = self._compiled.get(agent.id)
        if compiled is None or compiled.agent is not agent:
            compiled = self._compiled[agent.id] = _CompiledRubric.build(agent)
        return compiled

    def _verdict(
        self, score: float, reason: str, expected: str | None, correct: bool | None, complete: bool | None
    ) -> Evaluation:
        return Evaluation(
            score=round(min(max(score, 0.0), 1.0), 3),
            reason=reason,
            evaluator=self.name,
            evaluator_version=self.version,
            expected_tool=expected,
            tool_correct=correct,
            complete=complete,
        )

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        """Inline: the rubric does no I/O, so threads would only add overhead."""
        outcomes: list[Evaluation | Exception] = []
        for episode, agent in items:
            try:
                outcomes.append(self.evaluate(episode, agent))
            except Exception as exc:  # one bad episode is that episode's outcome
                outcomes.append(exc)
        return outcomes

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
        compiled = self._rubric(agent)
        normalized, rule, tool_scores = compiled.lookup(episode.state.query)
        expected = rule.tool if rule is not None else None
        chosen = episode.action.tool
        result = _as_mapping(episode.result)
        error = episode.error or (str(result["error"]) if result and result.get("error") else None)

        if not chosen:
            return self._verdict(
                0.0,
                "failed: the agent called no tool" + (f"; expected {expected}" if expected else ""),
                expected,
                False,
                False,
            )
        spec = compiled.tools.get(chosen)
        if spec is None:
            return self._verdict(
                0.0,
                f"failed: {chosen} is not one of the agent's tools ({', '.join(agent.tool_names)})",
                expected,
                False,
                False,
            )
        if expected is not None and chosen != expected:
            if error:
                return self._verdict(
                    0.0,
                    f"failed: wrong tool {chosen} (expected {expected}) and it failed: {error}",
                    expected,
                    False,
                    False,
                )
            chosen_fit = tool_scores.get(chosen, 0)
            if chosen_fit:
                ratio = chosen_fit / tool_scores[expected]
                return self._verdict(
                    0.3 + 0.19 * min(ratio, 1.0),
                    f"poor: called {chosen}, but the query fits {expected} better "
                    f"(intent score {chosen_fit} vs {tool_scores[expected]})",
                    expected,
                    False,
                    False,
                )
            return self._verdict(
                0.1, f"failed: wrong tool {chosen}; the query asks for {expected}", expected, False, False
            )
        correct = True if expected is not None else None
        if error:
            return self._verdict(
                0.2, f"failed: {chosen} returned an error: {error}", expected, correct, False
            )

        # Arguments: required ones present and valid against the schema; unknown ones cost.
        arguments = episode.action.arguments
        properties: dict[str, Any] = spec.parameters.get("properties", {})
        required = rule.required_arguments if rule is not None and rule.required_arguments else spec.required
        problems: list[str] = []
        valid = 0
        for name in required:
            if name not in arguments or arguments[name] in (None, ""):
                problems.append(f"missing argument {name}")
            elif not _valid(arguments[name], properties.get(name, {})):
                problems.append(f"invalid {name}={arguments[name]!r}")
            else:
                valid += 1
        unknown = [name for name in arguments if properties and name not in properties]
        if unknown:
            problems.append(f"unknown argument(s) {', '.join(unknown)}")
        argument_fraction = valid / len(required) if required else 1.0
        argument_fraction = max(argument_fraction - 0.25 * len(unknown), 0.0)

        # Result: every key the rubric says a complete answer holds.
        keys = rule.result_keys if rule is not None else []
        if keys:
            present = [key for key in keys if result is not None and result.get(key) is not None]
            result_fraction = len(present) / len(keys)
            missing = [key for key in keys if key not in present]
            if missing:
                problems.append(f"result lacks {', '.join(missing)}")
        else:
            result_fraction = 1.0 if episode.result is not None else 0.0
            if episode.result is None:
                problems.append("no result")
        completeness = (argument_fraction + result_fraction) / 2
        complete = completeness >= 1.0

        if expected is None:
            return self._verdict(
                0.5 + 0.19 * completeness,
                f"acceptable: {chosen} is a valid tool but no rubric intent matches the query, so the choice "
                "is unverified" + (f"; {'; '.join(problems)}" if problems else ""),
                None,
                None,
                complete,
            )
        if complete:
            padded = f" {normalized} "
            unstated = [n for n, v in arguments.items() if not _stated(v, padded)]
            if unstated:
                return self._verdict(
                    0.9,
                    f"excellent: correct tool {chosen}, complete arguments and result "
                    f"({', '.join(unstated)} not stated in the query)",
                    expected,
                    True,
                    True,
                )
            return self._verdict(
                1.0, f"excellent: correct tool {chosen}, complete arguments and result", expected, True, True
            )
        if completeness >= 0.5:
            return self._verdict(
                0.7 + 0.19 * (completeness - 0.5) / 0.5,
                f"good: correct tool {chosen}, mostly complete: {'; '.join(problems)}",
                expected,
                True,
                False,
            )
        return self._verdict(
            0.5 + 0.19 * completeness / 0.5,
            f"acceptable: correct tool {chosen}, but incomplete: {'; '.join(problems)}",
            expected,
            True,
            False,
        )

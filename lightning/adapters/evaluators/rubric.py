"""RubricEvaluator: the deterministic ``task_adherence`` evaluator used when no judge model is configured.

Built by ``Container.evaluator()`` (``--evaluator rubric``, or ``task_adherence`` with no
``AZURE_OPENAI_JUDGE_DEPLOYMENT``). It scores an episode against its agent's rubric
(``lightning/agents/*.yaml``) on the workshop's reward guideline bands:

=========  ==========  ==============================================================
band       reward      when
=========  ==========  ==============================================================
excellent  0.90–1.00   expected tool, every required argument valid and in agreement
                       with the request, result has every ``result_keys`` entry, no
                       error (1.0 when every argument value is stated in the query,
                       0.9 when defaults were filled in)
good       0.70–0.89   expected tool, mostly complete (completeness ≥ 0.5)
acceptable 0.50–0.69   expected tool but an argument contradicts the request (a value it
                       states, or the default when it states none), or largely
                       incomplete; or a valid tool for a query no rubric intent matches
                       (the choice cannot be verified)
poor       0.30–0.49   another tool whose intents the query also matches (recoverable)
failed     0.00–0.29   wrong tool, no tool call, unknown tool, or an error
=========  ==========  ==============================================================

**Which tool the request asks for.** Intent phrases of every rule are matched as whole words
on the normalized query (one compiled regex per agent; ``*`` ends a word prefix, ``#`` is a
number). A rule's *decisive* phrases outrank every generic one: the rule with the heaviest
decisive match wins, then the heaviest generic match, then the first seen ("Forecast sales for
the next 6 months" asks for ``sales_forecast``: "forecast" is decisive, "sales for the" only
generic). Weights default to a phrase's word count. A value a tool's argument rule reads from
the request (a horizon, a region) can add ``evidence`` to that tool. Misspelled words one edit
away from a rubric word are read as that word ("forcast", "chrun").

**Whether the arguments are the ones asked for.** Per tool and argument the YAML declares a
reader (``period``, ``months``, ``count``, ``choice`` with its phrases) and the default. When
the request states a value, the call must use it ("next month" → ``horizon_months: 1``,
"western region" → ``west``); when it states none, the call must use the default. Either
mismatch caps the reward in the acceptable band, with a reason naming the argument.

Completeness is the mean of the argument fraction (required arguments present and valid
against the tool's JSON schema, minus unknown arguments) and the result fraction
(``result_keys`` present). Query analyses are memoized (bounded), so labeling stays fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning.domain.agent import AgentDefinition, ArgumentRule, RubricRule, ToolSpec
from lightning.domain.episode import Episode
from lightning.ports.evaluator import Evaluation

VERSION = "rubric-2"
_CACHE_SIZE = 20_000
_NON_WORD = re.compile(r"[^a-z0-9]+")
_DISAGREE_SCORE = 0.6  # an argument contradicts the request: below the 0.7 accept threshold
_DECISIVE = 1_000_000.0  # any decisive weight outranks any sum of generic weights


def normalize(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space (``"At-risk?"`` → ``"at risk"``)."""
    return _NON_WORD.sub(" ", text.lower()).strip()


# --- numbers and the argument readers ---------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "dozen": 12,
}  # fmt: skip
_NUMBER = r"(?:\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_MONTH_NAMES = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBER_WORDS[token]


def _year(token: str) -> int:
    return int(token) if len(token) == 4 else 2000 + int(token)


_PERIOD = re.compile(
    r"\b(?:"
    r"q(?P<q>[1-4]) (?:fy )?(?P<qy>20\d\d|2\d)"
    r"|(?P<yq>20\d\d) q(?P<q2>[1-4])"
    r"|h(?P<h>[12]) (?:fy )?(?P<hy>20\d\d|2\d)"
    r"|(?P<m>" + "|".join(sorted(_MONTH_NAMES, key=len, reverse=True)) + r") (?:of )?(?P<my>20\d\d)"
    r"|(?P<rn>last|past|previous|prior|trailing) (?P<n>" + _NUMBER + r") months"
    r"|(?P<fn>next|coming|upcoming) (?P<fnn>" + _NUMBER + r") months"
    r"|(?P<rel>last|past|previous|prior|this|current|next|coming|upcoming) (?P<unit>quarter|month|year)"
    r"|(?P<ytd>year to date|ytd|year so far|so far this year)"
    r"|(?P<y>20\d\d)"
    r")\b"
)
_RELATIVE = {"past": "last", "previous": "last", "prior": "last", "current": "this", "coming": "next",
             "upcoming": "next"}  # fmt: skip


def _period_key(found: re.Match[str]) -> str:
    """A canonical key: equal keys name the same months ("previous quarter" = "last quarter")."""
    g = found.groupdict()
    if g["q"] or g["q2"]:
        return f"q{g['q'] or g['q2']} {_year(g['qy'] or g['yq'])}"
    if g["h"]:
        return f"h{g['h']} {_year(g['hy'])}"
    if g["m"]:
        return f"{int(g['my'])}-{_MONTH_NAMES[g['m']]:02d}"
    if g["rn"]:
        return f"last {_number(g['n'])} months"
    if g["fn"]:
        return f"next {_number(g['fnn'])} months"
    if g["rel"]:
        return f"{_RELATIVE.get(g['rel'], g['rel'])} {g['unit']}"
    if g["ytd"]:
        return "this year"  # the tools read "year to date" and "this year" as the same months
    return g["y"]


def read_periods(normalized: str) -> frozenset[Any]:
    """Every period a normalized text names, as canonical keys."""
    return frozenset(_period_key(found) for found in _PERIOD.finditer(normalized))


_periods_of_values: dict[str, str] = {}


def _period_of(value: str) -> str:
    """A call's period argument as a key (its text when it names no single period), memoized."""
    key = _periods_of_values.get(value)
    if key is None:
        keys = read_periods(normalize(value))
        key = next(iter(keys)) if len(keys) == 1 else normalize(value)
        if len(_periods_of_values) >= _CACHE_SIZE:
            _periods_of_values.clear()
        _periods_of_values[value] = key
    return key


_HORIZON = re.compile(
    r"\b(?:"
    r"(?P<yah>a year and a half|year and a half)"
    r"|(?P<half>half a year|half year|half of a year)"
    r"|(?P<n>" + _NUMBER + r"|a|an) (?P<unit>months?|mos?|quarters?|years?|yrs?)"
    r"|(?:next|coming|upcoming|following) (?P<rel>month|quarter|year)"
    r")\b"
)
_UNIT_MONTHS = {"m": 1, "q": 3, "y": 12}
_BACKWARD = re.compile(r"\b(?:last|past|previous|prior|trailing)\b")


def read_months(normalized: str) -> frozenset[Any]:
    """Every horizon ahead a normalized text names, in months."""
    found: set[Any] = set()
    for match in _HORIZON.finditer(normalized):
        before = normalized[max(0, match.start() - 10) : match.start()]
        if _BACKWARD.search(before) or normalized.startswith(" ago", match.end()):
            continue  # "the last 6 months" is a period behind us, not a horizon
        g = match.groupdict()
        if g["yah"]:
            found.add(18)
        elif g["half"]:
            found.add(6)
        elif g["rel"]:
            found.add(_UNIT_MONTHS[g["rel"][0]])
        else:
            count = 1 if g["n"] in ("a", "an") else _number(g["n"])
            found.add(count * _UNIT_MONTHS[g["unit"][0]])
    return frozenset(found)


_COUNT = re.compile(r"\b(?:(?P<n>" + _NUMBER + r")|(?P<one>single|number 1|number one|no 1))\b")


def read_counts(normalized: str) -> frozenset[Any]:
    """Every count a normalized text names."""
    # Numbers inside periods ("Q3 2025", "the last 6 months") and horizons are not counts.
    text = _PERIOD.sub(" ", normalized)
    text = _HORIZON.sub(" ", text)
    found: set[Any] = set()
    for match in _COUNT.finditer(text):
        found.add(1 if match.group("one") else _number(match.group("n")))
    return frozenset(found)


def _is_number(token: str) -> bool:
    return (token.isdigit() and len(token) <= 3) or token in _NUMBER_WORDS


class _PhraseMatcher:
    """Whole-word phrases found in a normalized text, leftmost first, the longest phrase at a position.

    The same matches as one regex alternation sorted longest first, but found by looking up each
    word, so the cost grows with the text and not with the number of phrases. A phrase token
    ending in ``*`` matches any word it starts; ``#`` matches a number (digits or words).
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = sorted(set(phrases), key=lambda p: (-len(p), p))
        self.tokens = [tuple(phrase.split()) for phrase in self.phrases]
        # A phrase of plain words matches where the text's words equal them: one list comparison.
        self.plain = [
            None if any(t == "#" or t.endswith("*") for t in tokens) else list(tokens)
            for tokens in self.tokens
        ]
        self.exact: dict[str, list[int]] = {}
        self.prefix: dict[str, list[int]] = {}
        self.number: list[int] = []
        for rank, tokens in enumerate(self.tokens):
            first = tokens[0]
            if first == "#":
                self.number.append(rank)
            elif first.endswith("*"):
                self.prefix.setdefault(first[:-1], []).append(rank)
            else:
                self.exact.setdefault(first, []).append(rank)
        self.prefix_lengths = sorted({len(key) for key in self.prefix})
        self._by_word: dict[str, tuple[int, ...]] = {}  # the phrases a word can start (bounded memo)

    def _candidates(self, word: str) -> tuple[int, ...]:
        found = self._by_word.get(word)
        if found is None:
            ranks = list(self.exact.get(word, ()))
            for length in self.prefix_lengths:
                if length > len(word):
                    break
                ranks.extend(self.prefix.get(word[:length], ()))
            if self.number and _is_number(word):
                ranks.extend(self.number)
            if len(self._by_word) >= _CACHE_SIZE:
                self._by_word.clear()
            found = self._by_word[word] = tuple(sorted(ranks))
        return found

    @staticmethod
    def _fits(pattern: str, token: str) -> bool:
        if pattern == "#":
            return _is_number(token)
        if pattern.endswith("*"):
            return token.startswith(pattern[:-1])
        return pattern == token

    def find(self, words: list[str]) -> list[tuple[int, int]]:
        """(phrase rank, word position) of every match."""
        found: list[tuple[int, int]] = []
        position = 0
        count = len(words)
        while position < count:
            best: int | None = None
            for rank in self._candidates(words[position]):  # longest phrase first: the first fit wins
                tokens = self.tokens[rank]
                end = position + len(tokens)
                if end > count:
                    continue
                plain = self.plain[rank]
                if (
                    words[position:end] == plain
                    if plain is not None
                    else all(self._fits(t, words[position + k]) for k, t in enumerate(tokens[1:], start=1))
                ):
                    best = rank
                    break
            if best is None:
                position += 1
            else:
                found.append((best, position))
                position += len(self.tokens[best])
        return found


def _normalize_phrase(phrase: str) -> str:
    """Normalize a rubric phrase but keep its ``*`` and ``#`` marks."""
    return " ".join(
        "#" if token == "#" else normalize(token.rstrip("*")) + ("*" if token.endswith("*") else "")
        for token in phrase.lower().replace("-", " ").split()
        if token == "#" or normalize(token.rstrip("*"))
    )


@dataclass(frozen=True)
class _Reader:
    """One argument's reader: the values a normalized text states."""

    rule: ArgumentRule
    read: Callable[[str], frozenset[Any]]

    @classmethod
    def build(cls, rule: ArgumentRule, schema: dict[str, Any]) -> _Reader:
        if rule.extract == "period":
            return cls(rule, read_periods)
        if rule.extract == "months":
            return cls(rule, _bounded(read_months, schema))
        if rule.extract == "count":
            return cls(rule, _bounded(read_counts, schema))
        phrases: dict[str, Any] = {}
        for value in schema.get("enum", []) or list(rule.values):
            if isinstance(value, str) and normalize(value):
                phrases.setdefault(_normalize_phrase(value), value)
        for value, words in rule.values.items():
            for phrase in words:
                if _normalize_phrase(phrase):
                    phrases[_normalize_phrase(phrase)] = value
        matcher = _PhraseMatcher(phrases)
        values = [phrases[p] for p in matcher.phrases]

        def read_choice(normalized: str) -> frozenset[Any]:
            return frozenset(values[rank] for rank, _ in matcher.find(normalized.split()))

        return cls(rule, read_choice)

    def canonical(self, value: Any) -> Any:
        """The call's value in the reader's terms (a period string → its key)."""
        if self.rule.extract == "period" and isinstance(value, str):
            return _period_of(value)
        return value


def _bounded(
    read: Callable[[str], frozenset[Any]], schema: dict[str, Any]
) -> Callable[[str], frozenset[Any]]:
    low, high = schema.get("minimum"), schema.get("maximum")

    def within(normalized: str) -> frozenset[Any]:
        return frozenset(
            v for v in read(normalized) if (low is None or v >= low) and (high is None or v <= high)
        )

    return within


# --- spelling ---------------------------------------------------------------------------------------


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class _Speller:
    """Reads a word one typo (a missing, extra or swapped letter) away from a rubric word as that word."""

    MIN_LENGTH = 5

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.words = {word for word in vocabulary if len(word) >= self.MIN_LENGTH}
        self.by_delete: dict[str, str] = {}
        for word in sorted(self.words):
            for variant in _deletes(word):
                self.by_delete.setdefault(variant, word)
        self._fixed: dict[str, str] = {}  # word → the rubric word it is read as (bounded memo)

    def _fix(self, token: str) -> str:
        fixed = self._fixed.get(token)
        if fixed is None:
            # A missing letter ("forcast"), an extra one ("revenuee") or two swapped ("chrun"); not a
            # wrong letter: that is how real words differ ("retail" / "retain", "doing" / "going").
            options = [self.by_delete.get(token)]
            options += sorted(variant for variant in _deletes(token) if variant in self.words)
            options += sorted(
                swapped
                for i in range(len(token) - 1)
                if (swapped := token[:i] + token[i + 1] + token[i] + token[i + 2 :]) in self.words
            )
            fixed = next((option for option in options if option is not None), token)
            if fixed[:-1] == token or token[:-1] == fixed:
                fixed = token  # an inflection ("number" / "numbers") is a real word, not a typo
            if len(self._fixed) >= _CACHE_SIZE:
                self._fixed.clear()
            self._fixed[token] = fixed
        return fixed

    def correct(self, normalized: str) -> str:
        if not self.words:
            return normalized
        tokens = normalized.split(" ")
        changed = False
        for index, token in enumerate(tokens):
            if len(token) < self.MIN_LENGTH or token in self.words or token.isdigit():
                continue
            fixed = self._fix(token)
            if fixed != token:
                tokens[index] = fixed
                changed = True
        return " ".join(tokens) if changed else normalized


# --- the compiled rubric ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    """What a request asks for: the best rule, every matching tool's fit, and the values it states."""

    normalized: str
    rule: RubricRule | None
    fits: dict[str, float]
    # Values stated per (tool, argument), read on first use: most episodes need one tool's.
    read: dict[tuple[str, str], frozenset[Any]] = field(default_factory=dict)

    def stated(self, tool: str, name: str, reader: _Reader) -> frozenset[Any]:
        key = (tool, name)
        found = self.read.get(key)
        if found is None:
            found = self.read[key] = reader.read(self.normalized)
        return found


@dataclass(frozen=True)
class _CompiledRubric:
    agent: AgentDefinition
    matcher: _PhraseMatcher
    phrases: tuple[tuple[tuple[int, float, bool], ...], ...]  # per matcher rank: (rule, weight, decisive)
    rules: tuple[RubricRule, ...]
    tools: dict[str, ToolSpec]
    readers: dict[str, dict[str, _Reader]]
    speller: _Speller
    result_keys: frozenset[str]  # every rule's result keys: what a verdict depends on in a result
    # Agents see the same requests again and again: remember each raw query's analysis and each
    # (request, call, kind of result)'s verdict (bounded).
    cache: dict[str, _Analysis] = field(default_factory=dict)
    verdicts: dict[tuple[Any, ...], Evaluation] = field(default_factory=dict)

    @classmethod
    def build(cls, agent: AgentDefinition) -> _CompiledRubric:
        entries: dict[str, dict[int, tuple[float, bool]]] = {}
        for index, rule in enumerate(agent.rubric.rules):
            weights = {_normalize_phrase(k): v for k, v in rule.weights.items()}
            for decisive, phrases in ((False, rule.intents), (True, rule.decisive)):
                for phrase in phrases:
                    key = _normalize_phrase(phrase)
                    if key:
                        weight = weights.get(key, float(key.count(" ") + 1))
                        entries.setdefault(key, {})[index] = (weight, decisive)
        matcher = _PhraseMatcher(entries)
        tools = {tool.name: tool for tool in agent.tools}
        readers: dict[str, dict[str, _Reader]] = {}
        vocabulary: set[str] = set()
        for key in entries:
            vocabulary.update(key.split())
        for rule in agent.rubric.rules:
            properties = tools[rule.tool].parameters.get("properties", {})
            readers[rule.tool] = {
                name: _Reader.build(check, properties.get(name, {})) for name, check in rule.arguments.items()
            }
            for check in rule.arguments.values():
                for words in check.values.values():
                    for phrase in words:
                        vocabulary.update(_normalize_phrase(phrase).split())
        return cls(
            agent=agent,
            matcher=matcher,
            phrases=tuple(
                tuple((index, weight, decisive) for index, (weight, decisive) in entries[phrase].items())
                for phrase in matcher.phrases
            ),
            rules=tuple(agent.rubric.rules),
            tools=tools,
            readers=readers,
            speller=_Speller(word.rstrip("*") for word in vocabulary if word != "#"),
            result_keys=frozenset(key for rule in agent.rubric.rules for key in rule.result_keys),
        )

    def lookup(self, query: str) -> _Analysis:
        """The analysis of a raw query, memoized."""
        found = self.cache.get(query)
        if found is None:
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            found = self.cache[query] = self.analyze(self.speller.correct(normalize(query)))
        return found

    def analyze(self, normalized: str) -> _Analysis:
        decisive: dict[int, float] = {}
        generic: dict[int, float] = {}
        first_seen: dict[int, int] = {}
        for rank, position in self.matcher.find(normalized.split()):
            for index, weight, is_decisive in self.phrases[rank]:
                # The strongest decisive cue decides ("forecast ... churn" is about churn); generic
                # cues add up.
                if is_decisive:
                    decisive[index] = max(decisive.get(index, 0.0), weight)
                else:
                    generic[index] = generic.get(index, 0.0) + weight
                first_seen.setdefault(index, position)
        read: dict[tuple[str, str], frozenset[Any]] = {}
        for index, rule in enumerate(self.rules):
            for name, check in rule.arguments.items():
                if check.evidence:
                    stated = read[rule.tool, name] = self.readers[rule.tool][name].read(normalized)
                    if stated:
                        if check.decisive_evidence:
                            decisive[index] = max(decisive.get(index, 0.0), check.evidence)
                        else:
                            generic[index] = generic.get(index, 0.0) + check.evidence
                        first_seen.setdefault(index, len(normalized))
        matched = set(decisive) | set(generic)
        if not matched:
            return _Analysis(normalized, None, {}, read)
        totals = {i: decisive.get(i, 0.0) * _DECISIVE + generic.get(i, 0.0) for i in matched}
        best = min(matched, key=lambda i: (-totals[i], first_seen[i], i))
        fits = {self.rules[i].tool: decisive.get(i, 0.0) + generic.get(i, 0.0) for i in matched}
        return _Analysis(normalized, self.rules[best], fits, read)


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


def _present(result: dict[str, Any], keys: frozenset[str]) -> frozenset[str]:
    """Which of ``keys`` the result holds with a value."""
    present = result.keys() & keys
    for key in present:
        if result[key] is None:
            return frozenset(key for key in present if result[key] is not None)
    return frozenset(present)


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


def _shown(values: frozenset[Any]) -> str:
    return " or ".join(repr(value) for value in sorted(values, key=str))


class RubricEvaluator:
    """Scores episodes with the agent's rubric; deterministic and fast (no I/O)."""

    name = "task_adherence"
    version = VERSION

    def __init__(self) -> None:
        self._compiled: dict[str, _CompiledRubric] = {}

    def _rubric(self, agent: AgentDefinition) -> _CompiledRubric:
        compiled = self._compiled.get(agent.id)
        if compiled is None or compiled.agent is not agent:
            compiled = self._compiled[agent.id] = _CompiledRubric.build(agent)
        return compiled

    def _verdict(
        self,
        score: float,
        reason: str,
        expected: str | None,
        correct: bool | None,
        complete: bool | None,
        flags: tuple[str, ...] = (),
    ) -> Evaluation:
        return Evaluation(
            score=round(min(max(score, 0.0), 1.0), 3),
            reason=reason,
            evaluator=self.name,
            evaluator_version=self.version,
            expected_tool=expected,
            tool_correct=correct,
            complete=complete,
            flags=flags,
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
        result = _as_mapping(episode.result)
        error = episode.error or (str(result["error"]) if result and result.get("error") else None)
        # The same request, call and kind of result always get the same verdict: remember it.
        arguments = episode.action.arguments
        key: tuple[Any, ...] | None = (
            episode.state.query,
            episode.action.tool,
            tuple(arguments.items()),
            tuple(map(type, arguments.values())),  # 1, 1.0 and True are equal keys, not equal arguments
            error,
            episode.result is None,
            _present(result, compiled.result_keys) if result is not None else None,
        )
        try:
            verdict = compiled.verdicts.get(key)  # type: ignore[arg-type]
        except TypeError:  # an unhashable argument value (a list): score it afresh
            verdict = key = None
        if verdict is None:
            verdict = self._flagged(compiled, episode, self._score(compiled, episode, agent, result, error))
            if key is not None:
                if len(compiled.verdicts) >= _CACHE_SIZE:
                    compiled.verdicts.clear()
                compiled.verdicts[key] = verdict
        return verdict

    @staticmethod
    def _flagged(compiled: _CompiledRubric, episode: Episode, verdict: Evaluation) -> Evaluation:
        """The verdict with what a reviewer should know about it (the review queue reads these)."""
        analysis = compiled.lookup(episode.state.query)
        flags: list[str] = []
        if verdict.expected_tool is None and episode.action.tool:
            flags.append("no_intent")  # the score is a guess: nothing said which tool fits
        if sum(1 for fit in analysis.fits.values() if fit) > 1:
            flags.append("competing_intent")  # several tools fit the request's words
        return verdict.model_copy(update={"flags": (*verdict.flags, *flags)}) if flags else verdict

    def _score(
        self,
        compiled: _CompiledRubric,
        episode: Episode,
        agent: AgentDefinition,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> Evaluation:
        analysis = compiled.lookup(episode.state.query)
        rule = analysis.rule
        expected = rule.tool if rule is not None else None
        chosen = episode.action.tool

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
            chosen_fit = analysis.fits.get(chosen, 0.0)
            if chosen_fit:
                expected_fit = analysis.fits[expected]
                return self._verdict(
                    0.3 + 0.19 * min(chosen_fit / expected_fit, 1.0),
                    f"poor: called {chosen}, but the query fits {expected} better "
                    f"(intent score {chosen_fit:g} vs {expected_fit:g})",
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
        checked = rule if rule is not None else agent.rubric.rule_for(chosen)
        required = (
            checked.required_arguments
            if checked is not None and checked.required_arguments
            else spec.required
        )
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

        # Agreement: a value the request states must be the call's; an unstated one the default.
        readers = compiled.readers.get(chosen, {})
        disagreements: list[str] = []
        read_stated: dict[str, bool] = {}
        for name, reader in readers.items():
            if name not in arguments or arguments[name] in (None, ""):
                continue
            value = arguments[name]
            stated = analysis.stated(chosen, name, reader)
            read_stated[name] = bool(stated)
            if stated:
                if reader.canonical(value) not in stated:
                    disagreements.append(
                        f"{name}={value!r} disagrees with the request, which states {_shown(stated)}"
                    )
            elif reader.rule.default is not None and value != reader.rule.default:
                disagreements.append(
                    f"{name}={value!r} is not stated in the request, so it should be the default "
                    f"{reader.rule.default!r}"
                )

        # Result: every key the rubric says a complete answer holds.
        keys = checked.result_keys if checked is not None else []
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
                "is unverified"
                + (f"; {'; '.join(disagreements + problems)}" if disagreements or problems else ""),
                None,
                None,
                complete,
            )
        if disagreements:
            return self._verdict(
                _DISAGREE_SCORE - 0.05 * (len(disagreements) - 1) - 0.05 * (1.0 - completeness),
                f"acceptable: correct tool {chosen}, but {'; '.join(disagreements + problems)}",
                expected,
                True,
                False,
                ("argument_disagrees",),
            )
        if complete:
            padded = f" {analysis.normalized} "
            unstated = [
                n
                for n, v in arguments.items()
                if not (read_stated[n] if n in read_stated else _stated(v, padded))
            ]
            if unstated:
                return self._verdict(
                    0.9,
                    f"excellent: correct tool {chosen}, complete arguments and result "
                    f"({', '.join(unstated)} not stated in the query)",
                    expected,
                    True,
                    True,
                    ("unstated_arguments",),
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

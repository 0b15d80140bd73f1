"""Golden sets: import an agent's known-right answers from a file, and list them.

Called by ``import-golden`` / ``list-golden``, ``POST``/``GET /api/golden``,
``POST /api/episodes/{id}/golden`` and the console. A golden
file is JSONL, one ``{"query", "expected_tool", "expected_arguments"}`` per line (``context``
optional). Every line is checked like a person's correction — the tool must be one of the agent's,
the arguments valid under its JSON schema — and a bad line is reported by number; the good ones are
stored (all or nothing with ``strict``). Corrections and confirmations made while reviewing join the
same set (``lightning/services/labeling.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightning.domain.episode import is_confirmation, is_correction
from lightning.domain.errors import InvalidInput
from lightning.domain.golden import GoldenExample
from lightning.domain.tool_schema import call_problems
from lightning.ports.agents import AgentRegistry
from lightning.ports.episodes import EpisodeStore
from lightning.ports.golden import GoldenStore

MAX_QUERY_CHARS = 20_000


class GoldenLine(BaseModel):
    """One line of a golden file."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    expected_tool: str = Field(min_length=1)
    expected_arguments: dict[str, object] = Field(default_factory=dict)
    context: dict[str, object] = Field(default_factory=dict)


class BadLine(BaseModel):
    line: int
    error: str


class GoldenImportReport(BaseModel):
    agent_id: str
    lines: int = Field(default=0, description="Non-blank lines read.")
    stored: int = Field(default=0, description="Examples written (new or replacing an earlier answer).")
    bad: list[BadLine] = Field(default_factory=list)
    strict: bool = False
    total: int = Field(default=0, description="The agent's golden set size after the import.")

    @property
    def aborted(self) -> bool:
        return self.strict and bool(self.bad)


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "line"
    return f"{where}: {str(first['msg']).removeprefix('Value error, ')}"


def import_golden(
    lines: Iterable[str],
    *,
    agent_id: str,
    agents: AgentRegistry,
    golden: GoldenStore,
    created_by: str,
    strict: bool = False,
) -> GoldenImportReport:
    """Check every line, store the good ones (none when ``strict`` and any is bad), report the bad ones
    by line number. Unknown agent → ``NotFound``. A request answered twice keeps the later answer."""
    agent = agents.get(agent_id)
    report = GoldenImportReport(agent_id=agent_id, strict=strict)
    examples: dict[str, GoldenExample] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        report.lines += 1
        try:
            line = GoldenLine.model_validate_json(text)
        except ValidationError as exc:
            try:
                json.loads(text)
            except ValueError as bad_json:
                report.bad.append(BadLine(line=number, error=f"not JSON: {bad_json}"))
                continue
            report.bad.append(BadLine(line=number, error=_reason(exc)))
            continue
        problems = call_problems(agent, line.expected_tool, line.expected_arguments)
        if problems:
            report.bad.append(BadLine(line=number, error="; ".join(problems)))
            continue
        example = GoldenExample.of(
            agent_id=agent_id,
            query=line.query,
            context=line.context,
            expected_tool=line.expected_tool,
            expected_arguments=line.expected_arguments,
            source="file",
            created_by=created_by,
        )
        examples[example.id] = example
    if report.lines == 0:
        raise InvalidInput("the golden file holds no examples (one JSON object per line)", field="file")
    if not report.aborted and examples:
        report.stored = golden.put(list(examples.values()))
    report.total = golden.count(agent_id)
    return report


def list_golden(
    agent_id: str, *, agents: AgentRegistry, golden: GoldenStore, limit: int | None = None
) -> list[GoldenExample]:
    """The agent's golden set, oldest first; unknown agent → ``NotFound``."""
    agents.get(agent_id)
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}", field="limit")
    return golden.list(agent_id, limit=limit)


def golden_from_episode(
    episode_id: str,
    *,
    expected_tool: str | None = None,
    expected_arguments: dict[str, object] | None = None,
    episodes: EpisodeStore,
    agents: AgentRegistry,
    golden: GoldenStore,
    created_by: str,
    confirm_at: float = 0.7,
) -> GoldenExample:
    """An episode's request with its right call, added to the agent's golden set (the console's one
    click). The call is the one given — a tool alone keeps the agent's arguments when it is the agent's
    tool — else the call a person's label names (their correction, or the agent's call they confirmed:
    rewarded at least ``confirm_at`` or named as the right one).
    Checked like any golden line; replaces an earlier answer to the same request. Unknown episode →
    ``NotFound``; no call to take → ``InvalidInput``."""
    episode = episodes.get(episode_id)
    agent = agents.get(episode.agent_id)
    action = episode.action
    if expected_tool is None and expected_arguments is None:
        human = episode.human_label
        named = is_correction(human, action) or is_confirmation(human, action, min_reward=confirm_at)
        if not named:
            raise InvalidInput(
                "no right call to add: give expected_tool and expected_arguments, or label the episode "
                "first (a correction or a confirmation names the call)",
                field="expected_tool",
            )
        call = episode.training_call()
        if call is None:
            raise InvalidInput("the agent called no tool: give expected_tool", field="expected_tool")
        tool, arguments = call
    else:
        tool = expected_tool or action.tool or ""
        if not tool:
            raise InvalidInput("the agent called no tool: give expected_tool", field="expected_tool")
        if expected_arguments is not None:
            arguments = dict(expected_arguments)
        elif tool == action.tool:
            arguments = dict(action.arguments)
        else:
            arguments = {}
    problems = call_problems(agent, tool, arguments)
    if problems:
        raise InvalidInput(
            f"not a call {agent.id} can make: {'; '.join(problems)}", field="expected_arguments"
        )
    same = tool == action.tool and arguments == action.arguments
    example = GoldenExample.of(
        agent_id=agent.id,
        query=episode.state.query,
        context=dict(episode.state.context),
        expected_tool=tool,
        expected_arguments=arguments,
        source="confirmation" if same else "correction",
        episode_id=episode.id,
        created_by=created_by,
    )
    golden.put([example])
    return example

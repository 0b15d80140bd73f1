"""Dataset building: labeled episodes → validated fine-tuning JSONL, a manifest and stored files.

Called by the CLI (``build-dataset``, ``dataset-info``, ``list-datasets``) and, as the
loop step ``build_datasets_when_ready``, by both hosts (the Functions timer and the
local ``run-loop``). Plain functions over ports; nothing here knows SQLite, Azure or
the tokenizer library.

How a build goes (``build_dataset``):

1. check the request (name, reward bounds, split) and the agent (``NotFound``);
2. count what the filters leave out (unlabeled, below ``min_reward``) with store counts,
   then *stream* the remaining episodes newest first — memory stays flat whatever the
   episode count: a set of 64-bit de-duplication keys and the open files, nothing else;
3. per episode: drop errored / tool-less / unknown-tool / duplicate ones (reason counted),
   redact secrets and personal data from every message, cap the tool result, shape the
   chat example with a native tool call, count its billed tokens (constant parts — system
   prompt and tool schemas — are counted once per dataset), drop it if over the base
   model's limit, validate it against the provider's rules and write it to the split the
   hash of its episode id picks;
4. enforce the file rules (>= 10 train examples; a validation split with < 10 examples
   is merged into train and a note says so; 512 MB per file);
5. name check: same name + same content → the existing dataset is returned; other content
   → ``Conflict`` unless ``overwrite``;
6. upload the files under a content-addressed blob name, then commit the manifest — the
   last step, so a build killed at any point leaves no visible dataset (at worst unreferenced
   files in the work folder or the blob store, which ``list-datasets`` never shows).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lightning.domain.agent import AgentDefinition
from lightning.domain.dataset import DatasetFile, DatasetFormat, DatasetManifest, RewardStats, Split
from lightning.domain.episode import (
    Episode,
    as_utc,
    format_timestamp,
    is_confirmation,
    is_correction,
    utcnow,
)
from lightning.domain.errors import Conflict, InvalidInput, NotFound
from lightning.domain.finetune_format import (
    MAX_FILE_BYTES,
    MIN_EXAMPLES_PER_FILE,
    REPLY_PRIMING,
    dedupe_key,
    message_tokens,
    normalize_query,
    split_for,
    token_limit_for,
    tools_tokens,
    validate_dpo_example,
)
from lightning.domain.messages import FINE_TUNE_JOBS, StartFineTune
from lightning.faultpoints import fault_point
from lightning.ports.agents import AgentRegistry
from lightning.ports.bundles import DatasetPorts
from lightning.ports.datasets import DatasetStore
from lightning.ports.episodes import EpisodeQuery, EpisodeStore
from lightning.ports.queue import Queue
from lightning.ports.writer import DatasetWork, SplitFile
from lightning.services.calibration import CalibrationPolicy, judge_report
from lightning.services.dataset_files import (
    ChatBuilder,
    ChatConfig,
    ExampleKind,
    Item,
    Shaper,
    Tally,
    chat_messages,
    dumps_args,
    finish_splits,
    result_text,
    sensitive,
    too_large,
)

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_VALIDATION_SPLIT = 0.5
_PROGRESS_EVERY = 2000
_DUMPS_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class BuildRequest(BaseModel):
    """What ``build-dataset`` was asked to build. Bad values raise ``InvalidInput`` (not a pydantic error)."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    name: str = Field(description="Dataset name: letters, digits, '.', '_', '-'; immutable once built.")
    min_reward: float = 0.7
    output_format: DatasetFormat = "jsonl"
    validation_split: float = Field(default=0.1, description="Fraction of episodes held out, by id hash.")
    max_examples: int | None = Field(default=None, description="Keep at most this many (newest) examples.")
    since: datetime | None = None
    until: datetime | None = None
    system_prompt: str | None = Field(default=None, description="Overrides the agent's system prompt.")
    base_model: str | None = Field(default=None, description="Base model whose token limit applies.")
    overwrite: bool = False
    max_tool_result_chars: int = Field(default=8000, ge=100)
    dpo_min_margin: float = Field(default=0.2, description="DPO: preferred reward - other reward >= this.")
    origin: str = Field(default="cli", description="Who asked: cli, loop, api.")
    human_only: bool = Field(
        default=False,
        description="Only episodes a person labeled (corrected or confirmed): the loop's choice when the "
        "judge is below its trust floor.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise InvalidInput(
                f"dataset name {value!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                field="name",
            )
        return value

    @field_validator("min_reward", "dpo_min_margin")
    @classmethod
    def _unit(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0 or value != value:
            raise InvalidInput(f"--min-reward must be between 0 and 1, got {value}", field="min_reward")
        return value

    @field_validator("validation_split")
    @classmethod
    def _split(cls, value: float) -> float:
        if not 0.0 <= value <= MAX_VALIDATION_SPLIT or value != value:
            raise InvalidInput(
                f"--validation-split must be between 0 and {MAX_VALIDATION_SPLIT}, got {value}",
                field="validation_split",
            )
        return value

    @field_validator("max_examples")
    @classmethod
    def _max(cls, value: int | None) -> int | None:
        if value is not None and value < MIN_EXAMPLES_PER_FILE:
            raise InvalidInput(
                f"--max-examples must be at least {MIN_EXAMPLES_PER_FILE} (the provider's minimum), got {value}",
                field="max_examples",
            )
        return value

    @model_validator(mode="after")
    def _window(self) -> BuildRequest:
        if self.since and self.until and as_utc(self.since) >= as_utc(self.until):
            raise InvalidInput("--since must be earlier than --until", field="since")
        return self


class BuildOutcome(BaseModel):
    """The committed dataset, and whether it already existed with the same content."""

    manifest: DatasetManifest
    reused: bool = Field(default=False, description="True when an identical dataset existed under the name.")


ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: episodes read so far out of the expected total."""


# --- the build ---------------------------------------------------------------------------------


def _check_agent_and_prompt(request: BuildRequest, agents: AgentRegistry) -> tuple[AgentDefinition, str]:
    agent = agents.get(request.agent_id)
    prompt = request.system_prompt if request.system_prompt is not None else agent.system_prompt
    if not prompt.strip():
        raise InvalidInput(
            "the system prompt is empty: pass a non-empty --system-prompt-file", field="system_prompt"
        )
    return agent, prompt


def _filters(request: BuildRequest, token_limit: int, prompt_source: str) -> dict[str, Any]:
    return {
        "min_reward": request.min_reward,
        "output_format": request.output_format,
        "validation_split": request.validation_split,
        "max_examples": request.max_examples,
        "since": format_timestamp(request.since) if request.since else None,
        "until": format_timestamp(request.until) if request.until else None,
        "base_model": request.base_model,
        "token_limit": token_limit,
        "max_tool_result_chars": request.max_tool_result_chars,
        "system_prompt_source": prompt_source,
        "trigger": request.origin,
        "human_only": request.human_only,
        **({"dpo_min_margin": request.dpo_min_margin} if request.output_format == "dpo" else {}),
    }


AIM_EXAMPLES = 50
"""Good examples to aim for when more are needed (the loop's default DATASET_MIN_EPISODES): a handful
meets the provider's minimum but rarely makes a model that passes the promotion gate."""
LOCAL_AGENT_URL = "http://127.0.0.1:8080"
"""Where ``lightning-loop serve-agent`` listens by default (and where ``simulate-traffic`` sends)."""
_ASSUMED_YIELD = 0.5  # share of new requests that become usable examples, before any are labeled
_MIN_YIELD = 0.25


def _more_traffic(agent_id: str, have: int, yield_rate: float | None) -> str:
    """The next step when there are too few good episodes: how many requests to send, and the commands.

    ``yield_rate`` is the share of this agent's labeled episodes that became usable examples (None:
    unknown); requests are rounded up to tens so that ~``AIM_EXAMPLES`` usable ones are likely."""
    rate = max(_MIN_YIELD, yield_rate if yield_rate is not None else _ASSUMED_YIELD)
    requests = max(10, math.ceil((AIM_EXAMPLES - have) / rate / 10) * 10)
    return (
        f"send about {requests} more requests with `lightning-loop simulate-traffic --agent-url "
        f"{LOCAL_AGENT_URL} --generate {requests}`, label them with `lightning-loop label-batch --agent-id "
        f"{agent_id} --auto-label` and build again"
    )


def _empty_error(request: BuildRequest, total: int, labeled: int) -> InvalidInput:
    window = ""
    if request.since or request.until:
        window = " in the --since/--until window"
    agent_id = request.agent_id
    if labeled < total:
        step = f"label them first with `lightning-loop label-batch --agent-id {agent_id} --auto-label`"
    else:
        step = _more_traffic(agent_id, 0, None)
    return InvalidInput(
        f"no labeled episodes with reward >= {request.min_reward:g} for agent {agent_id!r}{window} "
        f"({total:,} episodes, {labeled:,} labeled; fine-tuning needs at least {MIN_EXAMPLES_PER_FILE}): "
        f"{step}, or lower --min-reward",
        field="min_reward",
    )


@dataclass
class _Build:
    """One build in progress: what every step of it reads (instead of a dozen parameters each)."""

    request: BuildRequest
    ports: DatasetPorts
    agent: AgentDefinition
    prompt: str
    tools: list[dict[str, Any]]
    token_limit: int
    tally: Tally
    work: DatasetWork
    progress: ProgressFn | None


def build_dataset(
    request: BuildRequest,
    ports: DatasetPorts,
    *,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
) -> BuildOutcome:
    """Build, validate, store and commit one dataset (see the module docstring for the steps).

    Raises ``NotFound`` (unknown agent), ``InvalidInput`` (bad request, nothing usable, too few examples,
    file too large, validation failures), ``Conflict`` (the name holds other content and not ``overwrite``).
    ``now`` stamps ``created_at`` (default: the current time). The files are written through
    ``ports.writer`` (which may shape big builds in a helper process; the output is identical).
    """
    agent, prompt = _check_agent_and_prompt(request, ports.agents)
    episodes = ports.episodes
    token_limit = token_limit_for(request.base_model)
    prompt_source = "agent" if request.system_prompt is None else "file"
    window = {"agent_id": request.agent_id, "since": request.since, "until": request.until}
    total = episodes.count(EpisodeQuery(**window))
    labeled = episodes.count(EpisodeQuery(**window, labeled=True))
    build = _Build(
        request=request,
        ports=ports,
        agent=agent,
        prompt=prompt,
        tools=agent.openai_tools(),
        token_limit=token_limit,
        tally=Tally(),
        work=ports.writer.open(request.name),
        progress=progress,
    )
    tally = build.tally
    try:
        if request.output_format == "dpo":
            if labeled == 0:
                raise _empty_error(request, total, labeled)
            tally.dropped["unlabeled"] = total - labeled
            ids_note: str | None = _write_dpo(build)
            files = finish_splits(build.work, tally, name=request.name)
        else:
            human = episodes.count(EpisodeQuery(**window, human_labeled=True))
            auto = episodes.count(EpisodeQuery(**window, labeled=True, human_labeled=False))
            good = (
                0
                if request.human_only
                else episodes.count(
                    EpisodeQuery(**window, labeled=True, human_labeled=False, min_reward=request.min_reward)
                )
            )
            if good + human == 0:
                raise _empty_error(request, total, labeled)
            tally.dropped["unlabeled"] = total - labeled
            tally.dropped["below_min_reward" if not request.human_only else "auto_labeled_only"] = auto - good
            files = _write_chat(build, expected=good)
            ids_note = None
        _check_enough(request, files, tally)
        content = _content_sha(request.output_format, files)
        existing = ports.datasets.find(request.name)
        if existing is not None and existing.content_sha256 == content:
            logger.info(
                "dataset %s unchanged; returning the existing one", request.name, extra={"agent_id": agent.id}
            )
            return BuildOutcome(manifest=existing, reused=True)
        if existing is not None and not request.overwrite:
            raise Conflict(
                f"dataset {request.name!r} already exists with different content "
                f"(built {format_timestamp(existing.created_at)}); choose another --name or pass --overwrite",
                ident=request.name,
            )
        if ids_note:
            tally.notes.append(ids_note)
        manifest = _commit(
            build,
            files,
            content,
            _filters(request, token_limit, prompt_source),
            replaced=existing,
            created_at=as_utc(now) if now is not None else utcnow(),
        )
        return BuildOutcome(manifest=manifest, reused=False)
    finally:
        build.work.remove()


def _stream(
    episodes: EpisodeStore, query: EpisodeQuery, total: int, progress: ProgressFn | None
) -> Iterator[Episode]:
    done = 0
    for episode in episodes.query(query):
        yield episode
        done += 1
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)


def _usable(episode: Episode, tool_names: frozenset[str], tally: Tally) -> bool:
    """Hygiene rules shared by both formats; counts the reason of every drop."""
    if episode.error:
        tally.dropped["errored"] += 1
        return False
    tool = episode.action.tool
    if not tool:
        tally.dropped["no_tool_call"] += 1
        return False
    if tool not in tool_names:
        tally.dropped["unknown_tool"] += 1
        return False
    return True


def _item(episode: Episode, reward: float, tool: str, args_text: str, kind: ExampleKind) -> Item:
    text = episode.state.query
    if kind == "corrected":
        # The agent's result and answer belong to the call it made, not to the person's: the example
        # teaches only the right call.
        result, response = None, None
    else:
        result, response = episode.result, episode.response
    result_value = result_text(result)
    return (
        episode.id,
        reward,
        text,
        tool,
        args_text,
        result_value,
        result is None or isinstance(result, str),
        response,
        # the redaction pre-check runs on this side: it balances the two processes' work
        sensitive(text, args_text, result=result_value, response=response),
        kind,
    )


def _human_items(build: _Build, verdicts: _HumanVerdicts) -> Iterator[Item]:
    """Pass 1 — episodes a person labeled: a correction teaches the person's call, a confirmation the
    agent's; a rejection teaches nothing and forbids its call for that request in pass 2. Verdicts
    from outside the --since/--until window still bind the examples inside it."""
    request, tally = build.request, build.tally
    tool_names = frozenset(build.agent.tool_names)
    since = as_utc(request.since) if request.since else None
    until = as_utc(request.until) if request.until else None
    query = EpisodeQuery(agent_id=request.agent_id, human_labeled=True, order="newest")
    for episode in build.ports.episodes.query(query):
        in_window = (since is None or episode.timestamp >= since) and (
            until is None or episode.timestamp < until
        )
        human = episode.human_label
        assert human is not None
        text = episode.state.query
        key = normalize_query(text)
        call = episode.training_call()
        if is_correction(human, episode.action):
            kind: ExampleKind = "corrected"
        elif is_confirmation(human, episode.action, min_reward=request.min_reward):
            kind = "confirmed"
        else:
            if call is not None:
                verdicts.rejected.setdefault(key, set()).add(dedupe_key(text, call[0], dumps_args(call[1])))
            tally.dropped["rejected_by_human"] += in_window
            continue
        assert call is not None
        verdicts.answered.add(key)
        if not in_window:
            continue
        if kind == "confirmed" and not _usable(episode, tool_names, tally):
            continue
        if not text.strip():
            tally.dropped["empty_query"] += 1
            continue
        tool, arguments = call
        args_text = dumps_args(arguments)
        dedupe = dedupe_key(text, tool, args_text)
        if dedupe in verdicts.seen:
            tally.dropped["duplicate"] += 1
            continue
        verdicts.seen.add(dedupe)
        yield _item(episode, human.score, tool, args_text, kind)


class _HumanVerdicts:
    """What pass 1 learned: requests a person answered, calls a person rejected, examples written."""

    def __init__(self) -> None:
        self.answered: set[str] = set()
        self.rejected: dict[str, set[int]] = {}
        self.seen: set[int] = set()


def _chat_items(build: _Build, expected: int) -> Iterator[Item]:
    """The examples, in two passes: episodes a person labeled first, then auto-labeled ones at or above
    ``min_reward`` (newest first) — unless ``human_only``.

    No example contradicts a person: an auto-labeled episode is left out when a person answered the
    same request (``human_label_wins``) or rejected the same call for it (``rejected_by_human``).
    De-duplication happens here, on the reading side, with sets of 64-bit keys (~70 MB at a million
    distinct requests): the only state that grows with the data.
    """
    request, tally = build.request, build.tally
    verdicts = _HumanVerdicts()
    yield from _human_items(build, verdicts)
    if request.human_only:
        return
    tool_names = frozenset(build.agent.tool_names)
    query = EpisodeQuery(
        agent_id=request.agent_id,
        labeled=True,
        human_labeled=False,
        min_reward=request.min_reward,
        since=request.since,
        until=request.until,
        order="newest",
    )
    seen = verdicts.seen
    for episode in _stream(build.ports.episodes, query, expected, build.progress):
        reward = episode.reward
        if reward is None or reward < request.min_reward:  # the store filtered; a racing relabel may not have
            tally.dropped["below_min_reward"] += 1
            continue
        if episode.human_labeled:  # labeled by a person since the query started: pass 1 had it
            continue
        if not _usable(episode, tool_names, tally):
            continue
        text = episode.state.query
        if not text.strip():
            tally.dropped["empty_query"] += 1
            continue
        tool = episode.action.tool or ""
        args_text = dumps_args(episode.action.arguments)
        key = dedupe_key(text, tool, args_text)
        if verdicts.answered or verdicts.rejected:
            request_key = normalize_query(text)
            if request_key in verdicts.answered:
                tally.dropped["human_label_wins"] += 1
                continue
            if key in verdicts.rejected.get(request_key, ()):
                tally.dropped["rejected_by_human"] += 1
                continue
        if key in seen:
            tally.dropped["duplicate"] += 1
            continue
        seen.add(key)
        yield _item(episode, reward, tool, args_text, "auto")


def _write_chat(build: _Build, *, expected: int) -> dict[Split, SplitFile]:
    request = build.request
    config = ChatConfig(
        name=request.name,
        validation_split=request.validation_split,
        token_limit=build.token_limit,
        max_tool_result_chars=request.max_tool_result_chars,
        max_examples=request.max_examples,
    )
    count, work = build.ports.tokens.count, build.work

    def make_builder() -> ChatBuilder:
        return ChatBuilder(config, build.prompt, build.tools, count, work)

    files, shaped = build.ports.writer.build(
        _chat_items(build, expected),
        make_builder,
        expected=expected,
        limited=request.max_examples is not None,
    )
    shaped.dropped.update(build.tally.dropped)  # the reader's drops join the builder's
    build.tally.__dict__.update(shaped.__dict__)
    return files


@dataclass
class _Candidate:
    reward: float
    episode_id: str
    episode: Episode


def _tool_call_turn(shaper: Shaper, candidate: _Candidate) -> tuple[str, dict[str, Any]]:
    """A DPO side: the user's query and the assistant's tool-call message, redacted and capped as chat
    examples are."""
    episode = candidate.episode
    query, args_text, result_text, response = shaper.parts(
        episode.state.query, episode.action.arguments, episode.result, episode.response
    )
    messages = chat_messages(
        candidate.episode_id,
        query,
        tool=episode.action.tool or "",
        args_text=args_text,
        result_text=result_text,
        response=response,
    )
    return query, messages[1]


def _action_signature(episode: Episode) -> str:
    return f"{episode.action.tool}\x00{_DUMPS_COMPACT(episode.action.arguments)}"


def _write_dpo(build: _Build) -> str:
    """Preference pairs: for each normalized request, its best response (reward >= min_reward) against its
    worst (at least ``dpo_min_margin`` lower, a different tool call). Memory grows with the number of
    distinct requests (two episodes kept per request), not with the episode count."""
    request, tally, episodes = build.request, build.tally, build.ports.episodes
    prompt, tools, token_limit = build.prompt, build.tools, build.token_limit
    tool_names = frozenset(build.agent.tool_names)
    best: dict[str, _Candidate] = {}
    worst: dict[str, _Candidate] = {}
    query = EpisodeQuery(
        agent_id=request.agent_id, labeled=True, since=request.since, until=request.until, order="newest"
    )
    expected = episodes.count(query)
    for episode in _stream(episodes, query, expected, build.progress):
        if episode.reward is None or not _usable(episode, tool_names, tally):
            continue
        key = normalize_query(episode.state.query)
        candidate = _Candidate(episode.reward, episode.id, episode)
        if key not in best or candidate.reward > best[key].reward:
            best[key] = candidate
        if key not in worst or candidate.reward < worst[key].reward:
            worst[key] = candidate
    count = build.ports.tokens.count
    system = {"role": "system", "content": prompt}
    constant_tokens = message_tokens(system, count) + REPLY_PRIMING + tools_tokens(tools, count)
    shaper = Shaper(request.max_tool_result_chars, tally)
    kept = 0
    unpaired = 0
    for key in sorted(best, key=lambda k: best[k].episode_id):
        good, bad = best[key], worst[key]
        if (
            good.reward < request.min_reward
            or good.reward - bad.reward < request.dpo_min_margin
            or _action_signature(good.episode) == _action_signature(bad.episode)
        ):
            unpaired += 1
            continue
        user_query, preferred = _tool_call_turn(shaper, good)
        _, non_preferred = _tool_call_turn(shaper, bad)
        example = {
            "input": {"messages": [system, {"role": "user", "content": user_query}], "tools": tools},
            "preferred_output": [preferred],
            "non_preferred_output": [non_preferred],
        }
        example_tokens = constant_tokens + message_tokens(example["input"]["messages"][1], count)  # type: ignore[index]
        example_tokens += message_tokens(preferred, count) + message_tokens(non_preferred, count)
        if example_tokens > token_limit:
            tally.dropped["over_token_limit"] += 2
            continue
        problems = validate_dpo_example(example)
        if problems:
            tally.dropped["invalid_example"] += 2
            logger.warning("pair %s/%s is invalid: %s", good.episode_id, bad.episode_id, problems[0])
            continue
        writer = build.work.sink(split_for(good.episode_id, request.validation_split))
        line = _DUMPS_COMPACT(example).encode("utf-8", "replace") + b"\n"
        writer.write(line, f"{good.episode_id}\n{bad.episode_id}\n", example_tokens)
        if writer.nbytes > MAX_FILE_BYTES:
            raise too_large(
                split_for(good.episode_id, request.validation_split), writer.examples, name=request.name
            )
        tally.reward(good.reward)
        tally.tools[good.episode.action.tool or ""] += 1
        kept += 1
        if request.max_examples is not None and kept >= request.max_examples:
            tally.notes.append(f"stopped at --max-examples {request.max_examples:,} pairs")
            break
    if unpaired:
        tally.dropped["no_preference_pair"] = unpaired
    return (
        "DPO: each example pairs the best response to a request (reward >= min reward) with its worst "
        f"(>= {request.dpo_min_margin:g} lower, another tool call); reward statistics describe the preferred side"
    )


def _content_sha(output_format: str, files: dict[Split, SplitFile]) -> str:
    identity = hashlib.sha256(f"format:{output_format}\n".encode())
    for split, info in sorted(files.items()):
        identity.update(f"{split}:{info.sha256}\n".encode())
    return identity.hexdigest()


def _read_ids(files: dict[Split, SplitFile]) -> tuple[list[str], list[str]]:
    def read(split: Split) -> list[str]:
        info = files.get(split)
        return info.ids_path.read_text(encoding="utf-8").splitlines() if info is not None else []

    return read("train"), read("validation")


def _check_enough(request: BuildRequest, files: dict[Split, SplitFile], tally: Tally) -> None:
    train = files.get("train")
    usable = train.examples if train is not None else 0
    if usable < MIN_EXAMPLES_PER_FILE:
        dropped = ", ".join(f"{k}={v:,}" for k, v in sorted(tally.dropped.items()) if v) or "none"
        unit = "preference pairs" if request.output_format == "dpo" else "usable examples"
        seen = usable + sum(v for k, v in tally.dropped.items() if k != "unlabeled")
        raise InvalidInput(
            f"only {usable} {unit} for {request.agent_id!r} after hygiene (dropped: {dropped}); "
            f"fine-tuning needs at least {MIN_EXAMPLES_PER_FILE}, {MIN_EXAMPLES_PER_FILE - usable} more "
            f"(aim for {AIM_EXAMPLES}): "
            f"{_more_traffic(request.agent_id, usable, usable / seen if seen else None)}, or lower --min-reward",
            field="min_reward",
        )


def _commit(
    build: _Build,
    files: dict[Split, SplitFile],
    content: str,
    filters: dict[str, Any],
    *,
    replaced: DatasetManifest | None,
    created_at: datetime,
) -> DatasetManifest:
    request, agent, tally = build.request, build.agent, build.tally
    blobs, datasets = build.ports.blobs, build.ports.datasets
    train_ids, validation_ids = _read_ids(files)
    uploaded: list[str] = []
    stored: list[DatasetFile] = []
    try:
        for split, info in files.items():
            uri = blobs.upload_file(info.path, f"{request.name}/{content[:16]}/{split}.jsonl")
            uploaded.append(uri)
            stored.append(
                DatasetFile(
                    split=split,
                    uri=uri,
                    sha256=info.sha256,
                    examples=info.examples,
                    bytes=info.nbytes,
                    tokens=info.tokens,
                )
            )
        rewarded = max(tally.rewarded, 1)
        if tally.corrected:
            tally.notes.append(
                f"{tally.corrected} corrected example(s) teach the call a person gave, not the agent's; "
                f"reward statistics describe the other {tally.rewarded}"
            )
        manifest = DatasetManifest(
            name=request.name,
            agent_id=agent.id,
            format=request.output_format,
            episode_ids=train_ids,
            validation_episode_ids=validation_ids,
            filters=filters,
            files=stored,
            content_sha256=content,
            reward=RewardStats(
                avg=tally.reward_sum / rewarded,
                min=tally.reward_min if tally.rewarded else 0.0,
                max=tally.reward_max,
            ),
            corrected_examples=tally.corrected,
            confirmed_examples=tally.confirmed,
            token_count=sum(f.tokens for f in stored),
            tool_distribution=dict(sorted(tally.tools.items(), key=lambda kv: (-kv[1], kv[0]))),
            dropped={k: v for k, v in sorted(tally.dropped.items()) if v},
            redactions=dict(sorted(tally.redactions.items())),
            truncated=tally.truncated,
            notes=tally.notes,
            system_prompt=build.prompt,
            tools=build.tools,
            base_model=request.base_model,
            created_at=created_at,
        )
        fault_point("build.before_commit")
        committed = datasets.put(manifest, overwrite=request.overwrite)
    except BaseException:
        for uri in uploaded:  # best effort: unreferenced files are harmless, just untidy
            try:
                blobs.delete(uri)
            except Exception:
                logger.warning("could not remove %s after a failed build", uri)
        raise
    if replaced is not None:
        keep = {f.uri for f in committed.files}
        for old in replaced.files:
            if old.uri not in keep:
                try:
                    blobs.delete(old.uri)
                except Exception:
                    logger.warning("could not remove replaced file %s", old.uri)
    logger.info(
        "dataset %s built: %d train / %d validation examples, %d tokens",
        committed.name,
        committed.examples("train"),
        committed.examples("validation"),
        committed.token_count,
        extra={"agent_id": agent.id},
    )
    return committed


# --- reading ---------------------------------------------------------------------------------


def dataset_info(name: str, *, datasets: DatasetStore) -> DatasetManifest:
    """The manifest of ``name`` or ``NotFound`` with a hint."""
    found = datasets.find(name)
    if found is None:
        raise NotFound("dataset", name, hint="list them with `lightning-loop list-datasets`")
    return found


def list_datasets(*, datasets: DatasetStore, agent_id: str | None = None) -> list[DatasetManifest]:
    """Manifests, newest first."""
    return datasets.list(agent_id=agent_id)


def info_block(manifest: DatasetManifest) -> list[tuple[str, str]]:
    """The workshop's ``dataset-info`` block (exact), then split sizes and the tool distribution."""
    lines = [
        ("Dataset", manifest.name),
        ("Episodes", f"{manifest.episode_count:,}"),
        ("Avg Reward", f"{manifest.reward.avg:.2f}"),
        ("Min Reward", f"{manifest.reward.min:.2f}"),
        ("Max Reward", f"{manifest.reward.max:.2f}"),
        ("Token Count", f"{manifest.token_count:,}"),
    ]
    for split, label in (("train", "Train Examples"), ("validation", "Validation Examples")):
        found = manifest.file(split)  # type: ignore[arg-type]
        lines.append((label, f"{found.examples:,}" if found else "0"))
    total = sum(manifest.tool_distribution.values()) or 1
    tools = ", ".join(
        f"{tool} {count:,} ({count / total:.0%})" for tool, count in manifest.tool_distribution.items()
    )
    lines.append(("Tool Distribution", tools or "-"))
    lines.append(("Corrected Examples", f"{manifest.corrected_examples:,}"))
    lines.append(("Confirmed Examples", f"{manifest.confirmed_examples:,}"))
    return lines


def summary(manifest: DatasetManifest) -> dict[str, Any]:
    """The JSON view: the manifest without the (possibly huge) episode id lists, plus counts."""
    data = manifest.model_dump(mode="json", exclude={"episode_ids", "validation_episode_ids"})
    data["episodes"] = manifest.episode_count
    data["train_examples"] = manifest.examples("train")
    data["validation_examples"] = manifest.examples("validation")
    return data


# --- the loop step ---------------------------------------------------------------------------


class DatasetPolicy(BaseModel):
    """When the loop builds a dataset (from ``Settings``: DATASET_MIN_EPISODES, DATASET_MIN_REWARD, …)."""

    model_config = ConfigDict(frozen=True)

    min_episodes: int = Field(default=50, ge=MIN_EXAMPLES_PER_FILE, description="New good episodes needed.")
    min_reward: float = Field(default=0.7, ge=0, le=1)
    min_hours_between: float = Field(default=24.0, ge=0)
    base_model: str | None = None
    validation_split: float = Field(default=0.1, ge=0, le=MAX_VALIDATION_SPLIT)
    max_examples: int | None = Field(default=50_000, ge=MIN_EXAMPLES_PER_FILE)
    calibration: CalibrationPolicy = Field(
        default_factory=CalibrationPolicy,
        description="The judge's trust floor: below it, only human-labeled episodes make datasets.",
    )
    resend_within_hours: float = Field(
        default=1.0,
        ge=0,
        description="Re-send StartFineTune for a loop-built dataset this young (covers a crash between "
        "commit and send; the queue de-duplicates by message id and training is idempotent).",
    )


class DatasetStepReport(BaseModel):
    """What one run of the loop step did."""

    built: list[DatasetManifest] = Field(default_factory=list)
    queued: list[str] = Field(default_factory=list, description="Dataset names StartFineTune was sent for.")
    skipped: dict[str, str] = Field(default_factory=dict, description="Agent id → why nothing was built.")
    untrusted: dict[str, str] = Field(
        default_factory=dict,
        description="Agent id → why its judge is below the trust floor (datasets from human labels only).",
    )


def start_message_id(dataset_name: str) -> str:
    """The queue message id for ``StartFineTune`` of a dataset (the queue drops repeats)."""
    return f"start-fine-tune:{dataset_name}"


def _send_start(queue: Queue, agent_id: str, dataset_name: str, base_model: str | None) -> None:
    message = StartFineTune(agent_id=agent_id, dataset_name=dataset_name, base_model=base_model)
    queue.send(FINE_TUNE_JOBS, message.model_dump(mode="json"), message_id=start_message_id(dataset_name))


def build_datasets_when_ready(
    ports: DatasetPorts, policy: DatasetPolicy, *, now: datetime | None = None
) -> DatasetStepReport:
    """Loop step (timer): build a dataset for every agent that has enough new good episodes, and queue it.

    For each registered agent: ready when its labeled episodes with reward >= ``policy.min_reward`` and a
    timestamp at or after its last dataset's ``created_at`` number at least ``policy.min_episodes``, and
    ``policy.min_hours_between`` hours have passed since that dataset. The dataset (named
    ``<agent>-<UTC yyyymmddThhmmssZ>``) holds all good episodes (newest ``max_examples``), and
    ``StartFineTune`` goes to queue ``fine-tune-jobs`` with message id ``start-fine-tune:<name>``. An agent
    whose build fails for a reason a human must fix (too few usable examples …) is reported in ``skipped``
    and the others go on; provider/store errors propagate so the host retries the tick. ``now`` is the
    timer's time (default: the current time).
    """
    agents, episodes, datasets, queue = ports.agents, ports.episodes, ports.datasets, ports.queue
    moment = as_utc(now) if now is not None else utcnow()
    report = DatasetStepReport()
    for agent in agents.list():
        last = datasets.latest(agent.id)
        if last is not None:
            age = moment - as_utc(last.created_at)
            if last.filters.get("trigger") == "loop" and age < timedelta(hours=policy.resend_within_hours):
                _send_start(queue, agent.id, last.name, policy.base_model)
                report.queued.append(last.name)
            if age < timedelta(hours=policy.min_hours_between):
                report.skipped[agent.id] = (
                    f"last dataset {last.name} is {age.total_seconds() / 3600:.1f} h old "
                    f"(< {policy.min_hours_between:g} h)"
                )
                continue
        trust = judge_report(
            agent.id, episodes=episodes, golden=ports.golden, policy=policy.calibration
        ).trust
        since = as_utc(last.created_at) if last is not None else None
        if trust.trusted:
            fresh = episodes.count(
                EpisodeQuery(agent_id=agent.id, labeled=True, min_reward=policy.min_reward, since=since)
            )
        else:
            report.untrusted[agent.id] = trust.reason
            logger.warning(
                "judge of %s not trusted: %s", agent.id, trust.reason, extra={"agent_id": agent.id}
            )
            fresh = episodes.count(EpisodeQuery(agent_id=agent.id, human_labeled=True, since=since))
        if fresh < policy.min_episodes:
            what = "new good episodes" if trust.trusted else "new human-labeled episodes"
            report.skipped[agent.id] = f"{fresh} {what} (< {policy.min_episodes})" + (
                "" if trust.trusted else f"; {trust.reason}"
            )
            continue
        request = BuildRequest(
            agent_id=agent.id,
            name=f"{agent.id}-{moment:%Y%m%dT%H%M%SZ}",
            min_reward=policy.min_reward,
            validation_split=policy.validation_split,
            max_examples=policy.max_examples,
            base_model=policy.base_model,
            origin="loop",
            human_only=not trust.trusted,
        )
        try:
            outcome = build_dataset(request, ports, now=moment)
        except (InvalidInput, Conflict) as exc:
            logger.warning("no dataset for %s: %s", agent.id, exc, extra={"agent_id": agent.id})
            report.skipped[agent.id] = str(exc)
            continue
        report.built.append(outcome.manifest)
        _send_start(queue, agent.id, outcome.manifest.name, policy.base_model)
        report.queued.append(outcome.manifest.name)
    return report

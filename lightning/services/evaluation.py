"""Offline evaluation: replay held-out requests against a model and score the answers.

Called by the promotion gate (``lightning/services/promotion.py``) and by the
``evaluate`` CLI command. Each request goes through the ``ChatModel`` port with the
agent's own system prompt and tool schemas — exactly what the agent sends — and the
answer becomes an ``Episode`` that the configured ``Evaluator`` scores, so the gate
and the labeling pipeline judge with the same rules.

Running the tool: when a ``run_tool`` callable is given (the entry points pass the
reference agent's tools when they are importable) the chosen tool really runs and
its result is part of the episode, so the rubric can judge completeness. Without
one, the episode carries no result: the evaluator then judges tool choice and
arguments only, and both sides of a comparison are scored the same way, so the
gate stays fair. ``EvaluationSummary.details["tools_run"]`` says which it was.

Figures:
- tool accuracy: the chosen tool equals the request's expected tool (from its label,
  or from a known-good episode); when a request has none, the evaluator's
  ``tool_correct`` decides; requests with neither are left out of the denominator.
- argument exact match: over requests with known-good arguments, the right tool with
  exactly those arguments.
- average reward: the evaluator's score, 0 for requests that errored.
- error rate: the model call failed, made no tool call, named an unknown tool, or
  the tool raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Action, Episode, State
from lightning.domain.errors import InvalidInput, NotFound, ProviderError
from lightning.domain.model import EvalRequest, EvalSource, EvaluationSummary
from lightning.ports.chat import ChatModel, ToolCallChoice
from lightning.ports.datasets import DatasetStore
from lightning.ports.episodes import EpisodeQuery, EpisodeStore
from lightning.ports.evaluator import Evaluator
from lightning.ports.tools import ToolRunner

logger = logging.getLogger(__name__)


MAX_DETAIL_ROWS = 100  # per-request rows kept in the summary (stored with the model version: keep it small)


def requests_from_episodes(
    episodes: Iterable[Episode], *, source: EvalSource, min_reward: float
) -> list[EvalRequest]:
    """Held-out requests from labeled episodes.

    The expected tool is the label's ``expected_tool`` when the evaluator named one; otherwise an
    episode rewarded at least ``min_reward`` (and not marked tool-incorrect) vouches for its own tool
    and arguments. Other episodes still count: the evaluator judges the replayed answer.
    """
    requests: list[EvalRequest] = []
    for episode in episodes:
        label = episode.label
        good = (
            episode.reward is not None
            and episode.reward >= min_reward
            and episode.error is None
            and episode.action.tool is not None
            and (label is None or label.tool_correct is not False)
        )
        expected_tool = label.expected_tool if label is not None and label.expected_tool else None
        if expected_tool is None and good:
            expected_tool = episode.action.tool
        expected_arguments = (
            dict(episode.action.arguments) if good and episode.action.tool == expected_tool else None
        )
        requests.append(
            EvalRequest(
                query=episode.state.query,
                expected_tool=expected_tool,
                expected_arguments=expected_arguments,
                episode_id=episode.id,
                source=source,
            )
        )
    return requests


def held_out_requests(
    *,
    agent_id: str,
    episodes: EpisodeStore,
    datasets: DatasetStore,
    dataset_name: str | None,
    recent: int,
    min_reward: float,
) -> list[EvalRequest]:
    """The gate's held-out set: the dataset's validation split plus up to ``recent`` recent labeled
    episodes of the agent that the dataset does not contain (neither split)."""
    manifest = datasets.find(dataset_name) if dataset_name else datasets.latest(agent_id)
    if dataset_name and manifest is None:
        logger.warning("dataset %s not found; gating on recent episodes only", dataset_name)
    used: set[str] = set()
    validation: list[Episode] = []
    if manifest is not None:
        used = set(manifest.episode_ids) | set(manifest.validation_episode_ids)
        for episode_id in manifest.validation_episode_ids:
            try:
                validation.append(episodes.get(episode_id, agent_id=agent_id))
            except NotFound:
                logger.warning("validation episode %s is gone; skipped", episode_id)
    fresh: list[Episode] = []
    if recent > 0:
        for episode in episodes.query(EpisodeQuery(agent_id=agent_id, labeled=True, order="newest")):
            if episode.id in used:
                continue
            fresh.append(episode)
            if len(fresh) >= recent:
                break
    return requests_from_episodes(
        validation, source="validation", min_reward=min_reward
    ) + requests_from_episodes(fresh, source="recent", min_reward=min_reward)


def evaluate_model(
    *,
    model: str,
    agent: AgentDefinition,
    requests: Sequence[EvalRequest],
    chat: ChatModel,
    evaluator: Evaluator,
    run_tool: ToolRunner | None = None,
) -> EvaluationSummary:
    """Replay ``requests`` against ``model`` as ``agent`` and score every answer with ``evaluator``.

    A model call that fails counts as an error for that request; if *every* call fails the model
    could not be evaluated at all and ``ProviderError`` says why (an outage must not decide a gate).
    """
    tools = agent.openai_tools()
    tool_names = set(agent.tool_names)
    rewards: list[float] = []
    tool_hits = tool_counted = 0
    arg_hits = arg_counted = 0
    complete_hits = complete_counted = 0
    errors = provider_failures = 0
    first_failure: str | None = None
    rows: list[dict[str, Any]] = []

    for index, request in enumerate(requests):
        choice: ToolCallChoice | None = None
        error: str | None = None
        result: Any = None
        try:
            choice = chat.choose_tool(
                model=model, system_prompt=agent.system_prompt, tools=tools, query=request.query
            )
        except ProviderError as exc:
            provider_failures += 1
            first_failure = first_failure or str(exc)
            error = f"model call failed: {exc}"
        if choice is not None:
            if choice.tool is None:
                error = "the model made no tool call"
            elif choice.tool not in tool_names:
                error = f"the model called unknown tool {choice.tool!r}"
            elif run_tool is not None:
                try:
                    result = run_tool(choice.tool, dict(choice.arguments))
                except Exception as exc:  # a tool failing is a property of the answer, not a crash
                    error = f"{type(exc).__name__}: {exc}"
        episode = Episode(
            id=f"eval-{index}",
            agent_id=agent.id,
            state=State(query=request.query),
            action=Action(
                tool=choice.tool if choice else None, arguments=dict(choice.arguments) if choice else {}
            ),
            result=result,
            error=error,
            model_version=model,
        )
        verdict = evaluator.evaluate(episode, agent)
        reward = 0.0 if choice is None else float(verdict.score)
        rewards.append(reward)
        if error is not None:
            errors += 1

        chosen = choice.tool if choice else None
        expected = request.expected_tool or verdict.expected_tool
        tool_ok: bool | None
        if request.expected_tool is not None:
            tool_ok = chosen == request.expected_tool
        elif verdict.tool_correct is not None:
            tool_ok = bool(verdict.tool_correct) and choice is not None
        else:
            tool_ok = None
        if tool_ok is not None:
            tool_counted += 1
            tool_hits += int(tool_ok)
        args_ok: bool | None = None
        if request.expected_arguments is not None:
            args_ok = (
                choice is not None
                and chosen == (request.expected_tool or chosen)
                and dict(choice.arguments) == request.expected_arguments
            )
            arg_counted += 1
            arg_hits += int(args_ok)
        if verdict.complete is not None and run_tool is not None:
            complete_counted += 1
            complete_hits += int(bool(verdict.complete) and error is None)
        if len(rows) < MAX_DETAIL_ROWS:
            rows.append(
                {
                    "query": request.query,
                    "source": request.source,
                    "episode_id": request.episode_id,
                    "expected_tool": expected,
                    "tool": chosen,
                    "arguments": dict(choice.arguments) if choice else {},
                    "tool_correct": tool_ok,
                    "arguments_match": args_ok,
                    "reward": round(reward, 4),
                    "error": error,
                }
            )

    total = len(requests)
    if total and provider_failures == total:
        raise ProviderError(
            f"could not evaluate {model}: all {total} requests failed ({first_failure}); "
            "check that the model or deployment exists and the endpoint is reachable",
            provider="chat",
        )
    by_source: dict[str, int] = {}
    for request in requests:
        by_source[request.source] = by_source.get(request.source, 0) + 1
    return EvaluationSummary(
        model=model,
        examples=total,
        tool_accuracy=tool_hits / tool_counted if tool_counted else 0.0,
        argument_exact_match=arg_hits / arg_counted if arg_counted else None,
        avg_reward=sum(rewards) / total if total else 0.0,
        error_rate=errors / total if total else 0.0,
        completeness=complete_hits / complete_counted if complete_counted else None,
        evaluator=f"{evaluator.name}@{evaluator.version}",
        details={
            "tools_run": run_tool is not None,
            "tool_checked": tool_counted,
            "arguments_checked": arg_counted,
            "errors": errors,
            "by_source": by_source,
            "results": rows,
        },
    )


def dataset_requests(
    *, dataset_name: str, episodes: EpisodeStore, datasets: DatasetStore, min_reward: float
) -> list[EvalRequest]:
    """``evaluate --dataset NAME``: the dataset's validation split (its training split is not held out)."""
    manifest = datasets.get(dataset_name)
    if not manifest.validation_episode_ids:
        raise InvalidInput(
            f"dataset {dataset_name} has no validation split to evaluate on; rebuild it with a validation "
            "split, or evaluate with --queries FILE (or without --dataset: recent labeled episodes)",
            field="dataset",
        )
    found: list[Episode] = []
    for episode_id in manifest.validation_episode_ids:
        try:
            found.append(episodes.get(episode_id, agent_id=manifest.agent_id))
        except NotFound:
            logger.warning("validation episode %s of %s is gone; skipped", episode_id, dataset_name)
    return requests_from_episodes(found, source="dataset", min_reward=min_reward)


def select_requests(
    *,
    agent_id: str,
    episodes: EpisodeStore,
    datasets: DatasetStore,
    dataset_name: str | None = None,
    queries: Sequence[EvalRequest] | None = None,
    recent: int,
    min_reward: float,
    limit: int | None = None,
) -> list[EvalRequest]:
    """What ``evaluate`` replays: the given queries, else a dataset's validation split, else the gate's
    held-out set (latest dataset's validation split + recent labeled episodes it does not contain)."""
    if queries is not None:
        requests = list(queries)
    elif dataset_name is not None:
        requests = dataset_requests(
            dataset_name=dataset_name, episodes=episodes, datasets=datasets, min_reward=min_reward
        )
    else:
        requests = held_out_requests(
            agent_id=agent_id,
            episodes=episodes,
            datasets=datasets,
            dataset_name=None,
            recent=recent,
            min_reward=min_reward,
        )
    if limit is not None:
        requests = requests[:limit]
    if not requests:
        raise InvalidInput(
            f"no held-out requests for {agent_id}: label some episodes, build a dataset with a validation "
            "split, or pass --queries FILE / --generate N"
        )
    return requests

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

Figures, each named by where it comes from (``EvaluationSummary``):
- ground truth (requests whose right call a person or a golden set gave): tool accuracy
  and argument exact match, with 95% Wilson intervals;
- judge (the evaluator's opinion): judge-estimated tool accuracy — the chosen tool equals
  the one the judge vouched for (an auto label at or above the accept line) or, when no
  request says, the evaluator's own ``tool_correct`` — the average reward (0 for requests
  that errored) and completeness;
- observed: the error rate — the model call failed, made no tool call, named an unknown
  tool, or the tool raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from lightning.domain.agent import AgentDefinition
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import Action, Episode, State, is_confirmation, is_correction
from lightning.domain.errors import InvalidInput, NotFound, ProviderError
from lightning.domain.finetune_format import normalize_query, unit_hash
from lightning.domain.golden import GoldenExample
from lightning.domain.model import (
    EvalRequest,
    EvalSource,
    EvaluationSummary,
    GroundTruthFigures,
    JudgeFigures,
    Rate,
)
from lightning.ports.chat import ChatModel, ToolCallChoice
from lightning.ports.datasets import BlobStore, DatasetStore
from lightning.ports.episodes import EpisodeQuery, EpisodeStore
from lightning.ports.evaluator import Evaluation, Evaluator
from lightning.ports.golden import GoldenStore
from lightning.ports.models import ModelRegistry
from lightning.ports.runs import RunStore
from lightning.ports.tools import ToolRunner

logger = logging.getLogger(__name__)


MAX_DETAIL_ROWS = 100  # per-request rows kept in the summary (stored with the model version: keep it small)


def requests_from_episodes(
    episodes: Iterable[Episode], *, source: EvalSource, min_reward: float
) -> list[EvalRequest]:
    """Held-out requests from labeled episodes, each saying who vouches for its expected call.

    A person's label is ground truth: a correction or a confirmation gives the right call. Otherwise
    the judge vouches: the auto label's ``expected_tool`` when it named one, or the episode's own call
    when it was rewarded at least ``min_reward`` (and not marked tool-incorrect). Other episodes still
    count: the evaluator judges the replayed answer.
    """
    requests: list[EvalRequest] = []
    for episode in episodes:
        human = episode.human_label
        if human is not None and (
            is_correction(human, episode.action)
            or is_confirmation(human, episode.action, min_reward=min_reward)
        ):
            call = episode.training_call()
            assert call is not None
            requests.append(
                EvalRequest(
                    query=episode.state.query,
                    expected_tool=call[0],
                    expected_arguments=call[1],
                    episode_id=episode.id,
                    source=source,
                    truth="ground_truth",
                )
            )
            continue
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
                truth="judge" if expected_tool is not None else None,
            )
        )
    return requests


def golden_requests(examples: Iterable[GoldenExample]) -> list[EvalRequest]:
    """A golden set as requests with ground-truth answers."""
    return [
        EvalRequest(
            query=example.query,
            expected_tool=example.expected_tool,
            expected_arguments=dict(example.expected_arguments),
            episode_id=example.episode_id,
            source="golden",
            truth="ground_truth",
        )
        for example in examples
    ]


def training_queries(manifest: DatasetManifest | None, blobs: BlobStore) -> set[str]:
    """The normalized user requests of a dataset's training split (what a model tuned on it has seen)."""
    if manifest is None:
        return set()
    seen: set[str] = set()
    train = manifest.file("train")
    if train is None:
        return seen
    for line in blobs.open_lines(train.uri):
        example = json.loads(line)
        messages = example.get("messages") or example.get("input", {}).get("messages", [])
        for message in messages:
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                seen.add(normalize_query(message["content"]))
    return seen


def without_overlap(requests: Sequence[EvalRequest], trained: set[str]) -> tuple[list[EvalRequest], int]:
    """``requests`` minus those the model trained on (by normalized request), and how many were dropped."""
    if not trained:
        return list(requests), 0
    kept = [request for request in requests if normalize_query(request.query) not in trained]
    return kept, len(requests) - len(kept)


def stratified_cap(requests: Sequence[EvalRequest], cap: int) -> list[EvalRequest]:
    """At most ``cap`` requests, the same share of each (source, expected tool) stratum as in
    ``requests``, chosen by a stable hash of the request (the same set every time)."""
    if len(requests) <= cap:
        return list(requests)
    strata: dict[tuple[str, str], list[EvalRequest]] = {}
    for request in requests:
        strata.setdefault((request.source, request.expected_tool or ""), []).append(request)
    quotas = {key: max(1, round(cap * len(items) / len(requests))) for key, items in strata.items()}
    while sum(quotas.values()) > cap:  # rounding up every stratum can overshoot: trim the largest
        largest = max(quotas, key=lambda key: (quotas[key], key))
        quotas[largest] -= 1
    chosen: list[EvalRequest] = []
    for key, items in sorted(strata.items()):
        ranked = sorted(items, key=lambda r: unit_hash(f"{r.source}\x00{r.query}"))
        chosen.extend(ranked[: quotas[key]])
    return chosen


def held_out_requests(
    *,
    agent_id: str,
    episodes: EpisodeStore,
    datasets: DatasetStore,
    dataset_name: str | None,
    recent: int,
    min_reward: float,
) -> list[EvalRequest]:
    """The held-out episodes: the dataset's validation split plus up to ``recent`` recent labeled
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
    golden_set: str | None = None,
    excluded_overlap: int = 0,
) -> EvaluationSummary:
    """Replay ``requests`` against ``model`` as ``agent`` and score every answer with ``evaluator``
    (``evaluate_many``: the judge's own bounded concurrency).

    A model call that fails counts as an error for that request; if *every* call fails the model
    could not be evaluated at all and ``ProviderError`` says why (an outage must not decide a gate).
    An evaluator failure on one answer is that request's judge figure missing, never the whole run.
    """
    tools = agent.openai_tools()
    tool_names = set(agent.tool_names)
    answers: list[tuple[ToolCallChoice | None, str | None, Any]] = []
    provider_failures = 0
    first_failure: str | None = None
    for request in requests:
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
        answers.append((choice, error, result))
    total = len(requests)
    if total and provider_failures == total:
        raise ProviderError(
            f"could not evaluate {model}: all {total} requests failed ({first_failure}); "
            "check that the model or deployment exists and the endpoint is reachable",
            provider="chat",
        )
    episodes = [
        Episode(
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
        for index, (request, (choice, error, result)) in enumerate(zip(requests, answers, strict=True))
    ]
    verdicts = evaluator.evaluate_many([(episode, agent) for episode in episodes])

    rewards: list[float] = []
    gt_tool = gt_args = gt_n = 0
    judge_tool = judge_tool_n = judge_failures = 0
    complete_hits = complete_n = errors = 0
    rows: list[dict[str, Any]] = []
    for request, (choice, error, _), verdict in zip(requests, answers, verdicts, strict=True):
        chosen = choice.tool if choice else None
        arguments = dict(choice.arguments) if choice else {}
        errors += error is not None
        judged = verdict if isinstance(verdict, Evaluation) else None
        if judged is None:
            judge_failures += 1
        reward = 0.0 if choice is None or judged is None else float(judged.score)
        rewards.append(reward)
        right_tool = args_match = None
        if request.truth == "ground_truth" and request.expected_tool is not None:
            gt_n += 1
            right_tool = chosen == request.expected_tool
            gt_tool += right_tool
            args_match = right_tool and arguments == (request.expected_arguments or {})
            gt_args += args_match
        judge_ok: bool | None = None
        if request.truth == "judge" and request.expected_tool is not None:
            judge_ok = chosen == request.expected_tool
        elif request.truth is None and judged is not None and judged.tool_correct is not None:
            judge_ok = bool(judged.tool_correct) and choice is not None
        if judge_ok is not None:
            judge_tool_n += 1
            judge_tool += judge_ok
        if judged is not None and judged.complete is not None and run_tool is not None:
            complete_n += 1
            complete_hits += bool(judged.complete) and error is None
        if len(rows) < MAX_DETAIL_ROWS:
            rows.append(
                {
                    "query": request.query,
                    "source": request.source,
                    "truth": request.truth,
                    "episode_id": request.episode_id,
                    "expected_tool": request.expected_tool
                    or (judged.expected_tool if judged is not None else None),
                    "tool": chosen,
                    "arguments": arguments,
                    "right_tool": right_tool,
                    "arguments_match": args_match,
                    "judge_tool_correct": judge_ok,
                    "judge_reward": round(reward, 4),
                    "error": error,
                    "judge_error": None if judged is not None else str(verdict),
                }
            )
    by_source: dict[str, int] = {}
    for request in requests:
        by_source[request.source] = by_source.get(request.source, 0) + 1
    return EvaluationSummary(
        model=model,
        examples=total,
        ground_truth=GroundTruthFigures(
            n=gt_n, tool_accuracy=Rate.of(gt_tool, gt_n), argument_exact_match=Rate.of(gt_args, gt_n)
        ),
        judge=JudgeFigures(
            evaluator=f"{evaluator.name}@{evaluator.version}",
            n=total - judge_failures,
            tool_accuracy=Rate.of(judge_tool, judge_tool_n),
            avg_reward=sum(rewards) / total if total else 0.0,
            completeness=Rate.of(complete_hits, complete_n),
        ),
        error_rate=Rate.of(errors, total),
        golden_set=golden_set,
        excluded_overlap=excluded_overlap,
        details={
            "tools_run": run_tool is not None,
            "errors": errors,
            "judge_failures": judge_failures,
            "by_source": by_source,
            "results": rows,
        },
    )


def golden_set_requests(
    *,
    agent_id: str,
    model_names: Sequence[str],
    golden: GoldenStore,
    models: ModelRegistry,
    runs: RunStore,
    datasets: DatasetStore,
    blobs: BlobStore,
) -> tuple[list[EvalRequest], int, str]:
    """``evaluate --golden``: the agent's golden set minus every request one of ``model_names`` trained
    on (so all of them are compared on the same requests, none on its own training split); returns the
    requests, how many were left out, and the golden set's name."""
    examples = golden.list(agent_id)
    if not examples:
        raise InvalidInput(
            f"{agent_id} has no golden set yet: import one with `lightning-loop import-golden FILE "
            f"--agent-id {agent_id}`, or correct episodes with label-episode --expected-tool",
            field="golden",
        )
    trained: set[str] = set()
    for name in model_names:
        dataset_name = _dataset_of(name, agent_id=agent_id, models=models, runs=runs)
        if dataset_name is not None:
            trained |= training_queries(datasets.find(dataset_name), blobs)
    requests, overlap = without_overlap(golden_requests(examples), trained)
    if not requests:
        raise InvalidInput(
            f"every golden request of {agent_id} was in a training split of the models evaluated "
            f"({overlap} of {len(examples)}): add golden examples the models never saw",
            field="golden",
        )
    return requests, overlap, f"{agent_id} golden set ({len(examples)} examples)"


def _dataset_of(model: str, *, agent_id: str, models: ModelRegistry, runs: RunStore) -> str | None:
    """The dataset a fine-tuned model learned from (registry first, then the run that produced it)."""
    try:
        version = models.get(agent_id, model)
    except NotFound:
        version = None
    if version is not None and version.dataset_name:
        return version.dataset_name
    for run in runs.list(agent_id=agent_id, limit=1000):
        if run.fine_tuned_model == model:
            return run.dataset_name
    return None


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

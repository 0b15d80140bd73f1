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
  request says, the evaluator's own ``tool_correct`` — the average reward (0 where the model
  call failed) and completeness;
- observed: the error rate — the model call failed, made no tool call, named an unknown
  tool, or the tool raised — and the judge failures: answers the evaluator could not score
  (left out of the judge's figures; the gate refuses past ``GATE_MAX_JUDGE_FAILURE_RATE``).

The gate's replay is bounded (``evaluate_models``): rounds of requests, each asked with the
adapter's bounded concurrency, within a time budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning.domain.agent import AgentDefinition
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import Action, Episode, State, is_confirmation, is_correction, utcnow
from lightning.domain.errors import ConfigurationError, InvalidInput, NotFound, ProviderError
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
from lightning.ports.bundles import EvaluationPorts
from lightning.ports.chat import ChoiceOutcome, ToolCallChoice
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


ROUND_SIZE = 32  # requests per replay round: both models answer them, then the judge scores them


@dataclass(frozen=True)
class _Answer:
    """One model's answer to one request, before the evaluator scores it."""

    choice: ToolCallChoice | None
    error: str | None
    result: Any
    call_failed: str | None  # the model call itself failed (the provider's message)


def _answer(outcome: ChoiceOutcome, *, tool_names: set[str], run_tool: ToolRunner | None) -> _Answer:
    if isinstance(outcome, ConfigurationError):
        raise outcome  # fails every request: not a property of this answer
    if isinstance(outcome, Exception):
        return _Answer(None, f"model call failed: {outcome}", None, str(outcome))
    assert outcome is not None
    error: str | None = None
    result: Any = None
    if outcome.tool is None:
        error = "the model made no tool call"
    elif outcome.tool not in tool_names:
        error = f"the model called unknown tool {outcome.tool!r}"
    elif run_tool is not None:
        try:
            result = run_tool(outcome.tool, dict(outcome.arguments))
        except Exception as exc:  # a tool failing is a property of the answer, not a crash
            error = f"{type(exc).__name__}: {exc}"
    return _Answer(outcome, error, result, None)


def _episode(
    index: int, request: EvalRequest, answer: _Answer, *, agent: AgentDefinition, model: str
) -> Episode:
    choice = answer.choice
    return Episode(
        id=f"eval-{index}",
        agent_id=agent.id,
        state=State(query=request.query),
        action=Action(
            tool=choice.tool if choice else None, arguments=dict(choice.arguments) if choice else {}
        ),
        result=answer.result,
        error=answer.error,
        model_version=model,
    )


@dataclass(frozen=True)
class EvalSet:
    """The requests models are replayed on, and where they came from (named in every report)."""

    requests: Sequence[EvalRequest]
    golden_set: str | None = None  # the golden set's name, when the requests hold it
    excluded_overlap: int = 0  # golden requests left out because a model evaluated trained on them


def evaluate_model(
    *,
    model: str,
    agent: AgentDefinition,
    eval_set: EvalSet,
    ports: EvaluationPorts,
    time_budget: float | None = None,
) -> EvaluationSummary:
    """``evaluate_models`` for one model."""
    return evaluate_models(
        models=[model], agent=agent, eval_set=eval_set, ports=ports, time_budget=time_budget
    )[0]


def evaluate_models(
    *,
    models: Sequence[str],
    agent: AgentDefinition,
    eval_set: EvalSet,
    ports: EvaluationPorts,
    time_budget: float | None = None,
    round_size: int = ROUND_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[EvaluationSummary]:
    """Replay ``eval_set.requests`` against every model of ``models`` as ``agent`` and score the answers
    with ``ports.evaluator``; one summary per model, all over the same requests.

    Requests go in rounds of ``round_size``: each model answers the round (``ChatModel.choose_tools``:
    the adapter's bounded pool), then the evaluator scores every answer of the round
    (``evaluate_many``: the judge's bounded pool). With ``time_budget`` (seconds, measured on
    ``ports.clock``) no round starts that the longest round so far says would not fit, and no model call
    starts once the budget is spent: the summaries then cover the requests every model answered
    (``examples``) out of those planned (``planned``), and say why they stopped (``stopped_early``).
    ``on_progress(replayed, planned)`` runs after each round.

    Failures are data. A model call that fails is an error row for that request (observed error
    rate); if *every* call of a model fails, it could not be evaluated at all and ``ProviderError``
    says why (an outage must not decide a gate). An evaluator failure on one answer is an error row
    too (``judge_failures``, left out of the judge's figures), never the whole run.
    """
    requests, chat, evaluator, run_tool = eval_set.requests, ports.chat, ports.evaluator, ports.run_tool
    now = ports.clock.now if ports.clock is not None else utcnow
    started = now()
    tools = agent.openai_tools()
    tool_names = set(agent.tool_names)
    answers: dict[str, list[_Answer]] = {model: [] for model in models}
    verdicts: dict[str, list[Evaluation | Exception]] = {model: [] for model in models}
    replayed: list[EvalRequest] = []
    stopped_early: str | None = None
    longest_round = 0.0
    for start in range(0, len(requests), round_size):
        batch = list(requests[start : start + round_size])
        round_started = now()
        if time_budget is not None:
            left = time_budget - (round_started - started).total_seconds()
            if left <= longest_round:
                stopped_early = (
                    f"the time budget of {time_budget:g}s was spent after {len(replayed)} of "
                    f"{len(requests)} requests"
                )
                break
        outcomes: dict[str, list[ChoiceOutcome]] = {}
        for model in models:  # each model gets what is left of the budget, not a budget of its own
            outcomes[model] = chat.choose_tools(
                [request.query for request in batch],
                model=model,
                system_prompt=agent.system_prompt,
                tools=tools,
                time_limit=None if time_budget is None else time_budget - (now() - started).total_seconds(),
            )
        kept = [i for i in range(len(batch)) if all(outcomes[model][i] is not None for model in models)]
        round_answers = {
            model: [_answer(outcomes[model][i], tool_names=tool_names, run_tool=run_tool) for i in kept]
            for model in models
        }
        items = [
            (_episode(len(replayed) + n, batch[i], round_answers[model][n], agent=agent, model=model), agent)
            for model in models
            for n, i in enumerate(kept)
        ]
        scored = evaluator.evaluate_many(items)
        for position, model in enumerate(models):
            answers[model].extend(round_answers[model])
            verdicts[model].extend(scored[position * len(kept) : (position + 1) * len(kept)])
        replayed.extend(batch[i] for i in kept)
        longest_round = max(longest_round, (now() - round_started).total_seconds())
        if on_progress is not None:
            on_progress(len(replayed), len(requests))
        if len(kept) < len(batch):
            stopped_early = (
                f"the time budget of {time_budget:g}s ran out during a round, after {len(replayed)} of "
                f"{len(requests)} requests"
            )
            break
    for model in models:
        failed = [a.call_failed for a in answers[model] if a.call_failed is not None]
        if answers[model] and len(failed) == len(answers[model]):
            raise ProviderError(
                f"could not evaluate {model}: all {len(failed)} requests failed ({failed[0]}); "
                "check that the model or deployment exists and the endpoint is reachable",
                provider="chat",
            )
    return [
        _summarize(
            model,
            replayed,
            answers[model],
            verdicts[model],
            evaluator=evaluator,
            tools_run=run_tool is not None,
            golden_set=eval_set.golden_set,
            excluded_overlap=eval_set.excluded_overlap,
            planned=len(requests),
            stopped_early=stopped_early,
        )
        for model in models
    ]


def _summarize(
    model: str,
    requests: Sequence[EvalRequest],
    answers: Sequence[_Answer],
    verdicts: Sequence[Evaluation | Exception],
    *,
    evaluator: Evaluator,
    tools_run: bool,
    golden_set: str | None,
    excluded_overlap: int,
    planned: int,
    stopped_early: str | None,
) -> EvaluationSummary:
    """The figures of one model over the requests it answered (see the module docstring)."""
    total = len(requests)
    rewards: list[float] = []
    gt_tool = gt_args = gt_n = 0
    judge_tool = judge_tool_n = judge_failures = 0
    complete_hits = complete_n = errors = 0
    rows: list[dict[str, Any]] = []
    for request, answer, verdict in zip(requests, answers, verdicts, strict=True):
        choice, error = answer.choice, answer.error
        chosen = choice.tool if choice else None
        arguments = dict(choice.arguments) if choice else {}
        errors += error is not None
        judged = verdict if isinstance(verdict, Evaluation) else None
        if choice is None:
            rewards.append(0.0)  # the model failed: that is the model's score, not a missing one
        elif judged is None:
            judge_failures += 1  # an error row: left out of the judge's figures
        else:
            rewards.append(float(judged.score))
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
        if judged is not None and judged.complete is not None and tools_run:
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
                    "judge_reward": 0.0
                    if choice is None
                    else (round(float(judged.score), 4) if judged is not None else None),
                    "error": error,
                    "judge_error": None if judged is not None or choice is None else str(verdict),
                }
            )
    by_source: dict[str, int] = {}
    for request in requests:
        by_source[request.source] = by_source.get(request.source, 0) + 1
    return EvaluationSummary(
        model=model,
        examples=total,
        planned=planned,
        stopped_early=stopped_early,
        ground_truth=GroundTruthFigures(
            n=gt_n, tool_accuracy=Rate.of(gt_tool, gt_n), argument_exact_match=Rate.of(gt_args, gt_n)
        ),
        judge=JudgeFigures(
            evaluator=f"{evaluator.name}@{evaluator.version}",
            n=total - judge_failures,
            tool_accuracy=Rate.of(judge_tool, judge_tool_n),
            avg_reward=sum(rewards) / len(rewards) if rewards else 0.0,
            completeness=Rate.of(complete_hits, complete_n),
        ),
        error_rate=Rate.of(errors, total),
        judge_failures=judge_failures,
        golden_set=golden_set,
        excluded_overlap=excluded_overlap,
        details={
            "tools_run": tools_run,
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
) -> EvalSet:
    """``evaluate --golden``: the agent's golden set minus every request one of ``model_names`` trained
    on (so all of them are compared on the same requests, none on its own training split), with how
    many were left out and the golden set's name."""
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
    return EvalSet(requests, f"{agent_id} golden set ({len(examples)} examples)", overlap)


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

"""Labeling: rewards on episodes, by a person or by an evaluator.

Called by the CLI (``label-episode``, ``label-batch``), the HTTP endpoints, and the
loop hosts (the Cosmos change-feed Function and the local ``run-loop``) through
``label_new_episodes``.

Rules kept here:

* A human label always wins: auto-labeling never overwrites a label whose source is
  ``human``, and every auto-label write is guarded by the etag read with the episode, so
  a person labeling at the same moment wins the race (the evaluator's write is skipped).
* One bad episode never stops a batch: its failure is recorded in the report and the
  batch goes on. A misconfigured evaluator (``ConfigurationError``, e.g. no Entra ID token
  for the judge) stops it at once, and so do ``max_consecutive_failures`` failures in a row.
* Episodes are scored a window at a time through ``Evaluator.evaluate_many`` — the judge runs its
  HTTP calls from its own bounded pool, the rubric inline; results are recorded in episode order,
  so reports and writes are the same as one-by-one labeling.
* An auto label's ``labeled_at`` is exact to the second: the labeler reads the clock at a chunk's end
  and moves it on once a second has passed, so episodes the evaluator gives the same verdict (the
  rubric remembers verdicts for a repeated request and call) share one label value, built and
  serialized once. Each episode still gets the label in its own history.
* ``min_score`` never filters what is written: every scored episode gets its reward
  stored (so datasets can choose their own threshold later). It only decides what the
  report counts as *accepted for training* (score ≥ min_score) — the workshop's
  ``label-batch --min-score 0.7`` matches ``build-dataset --min-reward 0.7``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import (
    Episode,
    Label,
    check_reward,
    is_confirmation,
    is_correction,
    parse_reward,
    utcnow,
)
from lightning.domain.errors import (
    InvalidInput,
    NotFound,
    TransientProviderError,
)
from lightning.domain.golden import GoldenExample, golden_id
from lightning.domain.tool_schema import call_problems
from lightning.faultpoints import fault_point
from lightning.ports.agents import AgentRegistry
from lightning.ports.bundles import LabelingPorts
from lightning.ports.episodes import EpisodeQuery, EpisodeStore, LabelWrite
from lightning.ports.evaluator import Evaluation, Evaluator
from lightning.ports.golden import GoldenStore

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with how many more episodes were handled (for progress bars)."""

MAX_REASON_CHARS = 2000
_LABELED_AT_STEP = timedelta(seconds=1)
"""Auto labels written within a second share one ``labeled_at`` (so equal verdicts share one label)."""
_MAX_SHARED = 5000


class LabelFailure(BaseModel):
    """One episode a batch did not label, and why."""

    model_config = ConfigDict(frozen=True)

    episode_id: str
    kind: Literal[
        "failed",  # the evaluator raised or returned something unusable
        "skipped",  # human-labeled, already labeled, or changed while we were scoring it
    ]
    reason: str


class LabelReport(BaseModel):
    """What a labeling run did."""

    agent_id: str | None = Field(default=None, description="The agent labeled (None: several, from a feed).")
    evaluator: str | None = None
    evaluator_version: str | None = None
    min_score: float | None = Field(default=None, description="Scores at/above it count as accepted.")
    selected: int = Field(default=0, description="Episodes considered.")
    labeled: int = Field(default=0, description="Episodes that got a reward.")
    skipped: int = Field(default=0, description="Human-labeled, already labeled, or changed meanwhile.")
    failed: int = Field(default=0, description="Episodes the evaluator could not score (see failures).")
    accepted: int = Field(default=0, description="Labeled episodes scoring >= min_score (all when unset).")
    score_total: float = Field(default=0.0, exclude=True)
    failures: list[LabelFailure] = Field(default_factory=list, description="Failed and skipped episodes.")
    stopped: str | None = Field(default=None, description="Why the run stopped early, if it did.")

    @property
    def average_score(self) -> float | None:
        return round(self.score_total / self.labeled, 4) if self.labeled else None

    def summary(self) -> dict[str, object]:
        """The report as a plain dict (adds ``average_score``)."""
        data = self.model_dump(mode="json")
        data["average_score"] = self.average_score
        return data


class LabelingPolicy(BaseModel):
    """Knobs of automatic labeling, shared by ``label_batch`` and ``label_new_episodes``."""

    model_config = ConfigDict(frozen=True)

    min_score: float | None = Field(
        default=None, description="Accepted-for-training threshold (report only)."
    )
    chunk_size: int = Field(default=500, ge=1, description="Label writes per store call.")
    max_consecutive_failures: int = Field(
        default=50, ge=1, description="Stop after this many evaluator failures in a row (judge down)."
    )
    labeled_by: str | None = Field(default=None, description="Recorded on labels (default evaluator:NAME).")
    window: int = Field(
        # Twice the judge's pool (8 calls) keeps it busy; a larger window only keeps more episodes alive,
        # which the garbage collector then scans again and again (64 cost labeling 5 % more work).
        default=16,
        ge=1,
        le=10_000,
        description="Episodes handed to Evaluator.evaluate_many at a time.",
    )

    @field_validator("min_score")
    @classmethod
    def _valid_min_score(cls, value: float | None) -> float | None:
        return None if value is None else check_min_score(value)


def check_min_score(value: float) -> float:
    try:
        return check_reward(value)
    except ValueError as exc:
        raise InvalidInput(f"--min-score: {exc}", field="min_score") from None


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}", field="limit")


# --- human labels --------------------------------------------------------------------------------
class HumanLabel(BaseModel):
    """``label-episode`` / ``POST /api/episodes/{id}/label`` as a value: raw user input, checked by
    ``label_episode`` (so a bad value is one ``InvalidInput`` line, never a pydantic dump)."""

    model_config = ConfigDict(frozen=True)

    episode_id: str = Field(min_length=1)
    reward: Any = Field(description="A number in [0, 1] (a CLI string or a JSON number).")
    reason: str = ""
    labeled_by: str = "unknown"
    agent_id: str | None = Field(default=None, description="Its agent (a point read on Cosmos DB).")
    expected_tool: str | None = Field(default=None, description="The tool the agent should have called.")
    expected_arguments: Any = Field(
        default=None, description="Its arguments: a JSON object, or JSON text of one (CLI)."
    )
    if_match: str | None = Field(
        default=None, description="The etag the person saw: a label over a newer version is a Conflict."
    )


LabelKind = Literal[
    "correction",  # the person named another call than the agent's
    "confirmation",  # the person vouched for the agent's call
    "rejection",  # a low reward and no correction: wrong, right answer unknown
]


class HumanLabelOutcome(BaseModel):
    episode: Episode
    kind: LabelKind
    golden: GoldenExample | None = Field(
        default=None, description="The golden example the label added or replaced, if any."
    )


def _expected_arguments(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"--expected-arguments is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); "
                'pass an object like \'{"period": "Q4 2025"}\'',
                field="expected_arguments",
            ) from None
        if isinstance(parsed, dict):
            return parsed
    raise InvalidInput(
        "--expected-arguments must be a JSON object of the tool's arguments", field="expected_arguments"
    )


def _expected_call(
    request: HumanLabel, episode: Episode, agent: AgentDefinition
) -> tuple[str | None, dict[str, Any] | None]:
    """The call the person says is right (tool, arguments), checked against the agent's tool schemas."""
    arguments = _expected_arguments(request.expected_arguments)
    tool = request.expected_tool
    if tool is None and arguments is None:
        return None, None
    if tool is None:
        tool = episode.action.tool
        if tool is None:
            raise InvalidInput(
                "the agent called no tool: name the right one with --expected-tool", field="expected_tool"
            )
    if agent.tool(tool) is None:
        raise InvalidInput(
            f"--expected-tool {tool!r} is not one of {agent.id}'s tools ({', '.join(agent.tool_names)})",
            field="expected_tool",
        )
    if arguments is None:
        if tool == episode.action.tool:
            arguments = dict(episode.action.arguments)
        else:
            required = agent.tool(tool).required  # type: ignore[union-attr]
            if required:
                raise InvalidInput(
                    f"--expected-arguments is needed when the right tool ({tool}) is not the agent's "
                    f"({episode.action.tool}): {tool} requires {', '.join(required)}",
                    field="expected_arguments",
                )
            arguments = {}
    problems = call_problems(agent, tool, arguments)
    if problems:
        raise InvalidInput(
            f"--expected-arguments do not fit {tool}'s schema: {'; '.join(problems)}",
            field="expected_arguments",
        )
    return tool, arguments


def label_episode(
    request: HumanLabel,
    *,
    episodes: EpisodeStore,
    agents: AgentRegistry,
    golden: GoldenStore | None = None,
    confirm_at: float = 0.7,
) -> HumanLabelOutcome:
    """Store a person's label on one episode (appended to its history; it is the effective label from
    now on) and return the episode, what kind of label it was, and the golden example it made.

    Every field is user input and checked first — the reward (a finite number in [0, 1]), the reason's
    length, the expected tool (one of the agent's tools) and arguments (valid under that tool's JSON
    schema) — so a bad value stores nothing (``InvalidInput``). Unknown episode → ``NotFound``. With
    ``if_match`` the etag goes straight to the store's conditional write: a newer version is
    ``Conflict``, never retried into an overwrite. Without it, the label is appended to whatever is
    there (an auto label written meanwhile cannot displace it: human labels always win).

    A correction (another call than the agent's) or a confirmation (the agent's call, rewarded at least
    ``confirm_at`` or named as the right one) joins the agent's golden set; a later rejection of the
    same episode takes its example back out.
    """
    score = parse_reward(request.reward)
    if len(request.reason) > MAX_REASON_CHARS:
        raise InvalidInput(
            f"--reason is too long ({len(request.reason)} characters, at most {MAX_REASON_CHARS})"
        )
    current = episodes.get(request.episode_id, agent_id=request.agent_id)
    agent = agents.get(current.agent_id)
    tool, arguments = _expected_call(request, current, agent)
    label = Label(
        source="human",
        score=score,
        reason=request.reason,
        labeled_at=utcnow(),
        labeled_by=request.labeled_by,
        expected_tool=tool,
        expected_arguments=arguments,
        tool_correct=None if tool is None else tool == current.action.tool,
    )
    episode = episodes.save_label(
        request.episode_id, label, agent_id=current.agent_id, expected_etag=request.if_match
    )
    kind: LabelKind
    if is_correction(label, episode.action):
        kind = "correction"
    elif is_confirmation(label, episode.action, min_reward=confirm_at):
        kind = "confirmation"
    else:
        kind = "rejection"
    example = _update_golden(golden, episode, label, kind) if golden is not None else None
    logger.info(
        "episode %s labeled by %s: %s (%.2f)",
        episode.id,
        request.labeled_by,
        kind,
        score,
        extra={"episode_id": episode.id, "agent_id": episode.agent_id},
    )
    return HumanLabelOutcome(episode=episode, kind=kind, golden=example)


def _update_golden(
    golden: GoldenStore, episode: Episode, label: Label, kind: LabelKind
) -> GoldenExample | None:
    example_id = golden_id(episode.agent_id, episode.state.query)
    if kind == "rejection":
        try:
            existing = golden.get(episode.agent_id, example_id)
        except NotFound:
            return None
        if existing.episode_id == episode.id:  # this episode's own answer was just withdrawn
            golden.delete(episode.agent_id, example_id)
        return None
    call = episode.training_call()
    assert call is not None  # a correction or confirmation names a call
    example = GoldenExample(
        id=example_id,
        agent_id=episode.agent_id,
        query=episode.state.query,
        context=dict(episode.state.context),
        expected_tool=call[0],
        expected_arguments=call[1],
        source=kind,
        episode_id=episode.id,
        created_by=label.labeled_by,
        created_at=label.labeled_at,
    )
    golden.put([example])
    return example


# --- automatic labels ----------------------------------------------------------------------------
def _auto_label(evaluation: Evaluation, labeled_by: str, labeled_at: datetime | None = None) -> Label:
    return Label(
        source="auto",
        score=evaluation.score,
        reason=evaluation.reason[:MAX_REASON_CHARS],
        evaluator=evaluation.evaluator,
        evaluator_version=evaluation.evaluator_version,
        labeled_at=labeled_at or utcnow(),
        labeled_by=labeled_by,
        expected_tool=evaluation.expected_tool,
        tool_correct=evaluation.tool_correct,
        complete=evaluation.complete,
        flags=evaluation.flags,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        return f"evaluator returned an invalid {where}: {str(first['msg']).removeprefix('Value error, ')}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class LabelBatchRequest(BaseModel):
    """``label-batch`` as a value."""

    model_config = ConfigDict(frozen=True)

    agent_id: str = Field(min_length=1)
    limit: int | None = Field(default=None, description="Label at most this many, oldest first.")
    relabel: bool = Field(default=False, description="Also re-score auto-labeled episodes (never human).")

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | None) -> int | None:
        _check_limit(value)
        return value


class _Labeler:
    """Scores episodes a window at a time and writes their labels in chunks, filling one report.

    Per episode it does only what the rules need (the human check, one label, one guarded write);
    counting is per chunk: when every write of a chunk landed — the usual case — the counters move in
    one step, and only a chunk with conflicts or missing episodes is looked at write by write.
    """

    def __init__(
        self, *, store: EpisodeStore, evaluator: Evaluator, policy: LabelingPolicy, report: LabelReport
    ) -> None:
        self.store = store
        self.window: list[tuple[Episode, AgentDefinition]] = []
        self.window_size = policy.window
        self.evaluator = evaluator
        self.policy = policy
        self.report = report
        self.labeled_by = policy.labeled_by or f"evaluator:{evaluator.name}"
        self.pending: list[LabelWrite] = []
        # The label each evaluation made while ``now`` stands, by the evaluation's identity: an evaluator
        # that returns the same verdict object again (the rubric, for a repeated request and call) gets
        # the same label — an equal value (same verdict, labeler and time) — built and serialized once.
        # ``labeled_at`` moves on at a chunk's end once a second has passed, so a verdict repeated across
        # chunks keeps its label; at most ``_MAX_SHARED`` entries are held.
        self.shared: dict[int, tuple[Evaluation, Label]] = {}
        self.consecutive_failures = 0
        self.now = utcnow()  # labeled_at, to the second: reading the clock per label costs more than it says
        # Plain ints on the hot path (pydantic attribute assignment costs microseconds each).
        self.selected = self.labeled = self.accepted = 0
        self.score_total = 0.0

    def fail(self, episode_id: str, kind: Literal["failed", "skipped"], reason: str) -> None:
        if kind == "failed":
            self.report.failed += 1
        else:
            self.report.skipped += 1
        self.report.failures.append(LabelFailure(episode_id=episode_id, kind=kind, reason=reason))

    def handle(self, episode: Episode, agent: AgentDefinition) -> None:
        self.selected += 1
        if episode.human_labeled:
            self.fail(episode.id, "skipped", "labeled by a person; human labels are never overwritten")
            return
        self.window.append((episode, agent))
        if len(self.window) >= self.window_size:
            self.drain()

    def drain(self) -> None:
        """Score the waiting window (``ConfigurationError`` stops everything: it would fail every
        episode); record the outcomes in episode order."""
        window, self.window = self.window, []
        if not window:
            return
        outcomes = self.evaluator.evaluate_many(window)
        for (episode, _agent), outcome in zip(window, outcomes, strict=True):
            label = self.label_of(outcome)
            if isinstance(label, Exception):
                self.evaluator_failed(episode, label)
                if self.report.stopped:
                    break  # the rest of the window is left unlabeled, like the rest of the batch
                continue
            self.consecutive_failures = 0
            self.pending.append(
                LabelWrite(
                    episode_id=episode.id, agent_id=episode.agent_id, label=label, expected_etag=episode.etag
                )
            )
            if len(self.pending) >= self.policy.chunk_size:
                self.flush()

    def label_of(self, outcome: Evaluation | Exception) -> Label | Exception:
        """The label an evaluation makes (the one it made already, while ``now`` stands), or why none."""
        if isinstance(outcome, Exception):
            return outcome
        made = self.shared.get(id(outcome))
        if made is not None and made[0] is outcome:
            return made[1]
        try:
            label = _auto_label(outcome, self.labeled_by, self.now)
        except Exception as exc:  # an evaluation that cannot become a label is that episode's failure
            return exc
        self.shared[id(outcome)] = (outcome, label)
        return label

    def evaluator_failed(self, episode: Episode, exc: Exception) -> None:
        reason = _one_line(exc)
        logger.info(  # the report carries it; hosts log the summary
            "evaluator %s failed on episode %s: %s",
            self.evaluator.name,
            episode.id,
            reason,
            extra={"episode_id": episode.id, "agent_id": episode.agent_id},
        )
        self.fail(episode.id, "failed", reason)
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.policy.max_consecutive_failures:
            self.report.stopped = (
                f"stopped after {self.consecutive_failures} failures in a row "
                f"(last: {reason}); fix the evaluator and run again"
            )

    def finish(self) -> LabelReport:
        """Write what is pending and the counters into the report."""
        self.drain()
        self.flush()
        self.report.selected += self.selected
        self.report.labeled += self.labeled
        self.report.accepted += self.accepted
        self.report.score_total += self.score_total
        self.selected = self.labeled = self.accepted = 0
        self.score_total = 0.0
        return self.report

    def flush(self) -> None:
        if not self.pending:
            return
        chunk, self.pending = self.pending, []
        now = utcnow()
        if now - self.now >= _LABELED_AT_STEP or len(self.shared) > _MAX_SHARED:
            self.now, self.shared = now, {}
        outcome = self.store.save_labels(chunk)
        fault_point("label.after_chunk")
        if len(outcome.written) == len(chunk):
            landed = chunk
        else:
            written, conflicts = Counter(outcome.written), set(outcome.conflicts)
            landed = []
            for write in chunk:
                if written[write.episode_id]:  # an id twice in a chunk landed once (the second is stale)
                    written[write.episode_id] -= 1
                    landed.append(write)
                elif write.episode_id in conflicts:
                    self.fail(
                        write.episode_id,
                        "skipped",
                        "changed while it was being scored (a person labeled it?)",
                    )
                else:
                    self.fail(write.episode_id, "skipped", "no longer in the store")
        scores = [write.label.score for write in landed]
        self.labeled += len(scores)
        self.score_total += sum(scores)
        floor = self.policy.min_score
        self.accepted += len(scores) if floor is None else sum(1 for score in scores if score >= floor)


def label_batch(
    request: LabelBatchRequest,
    ports: LabelingPorts,
    policy: LabelingPolicy | None = None,
    *,
    on_progress: Progress | None = None,
) -> LabelReport:
    """Auto-label an agent's unlabeled episodes, oldest first, up to ``request.limit``.

    ``request.relabel`` also re-scores episodes an evaluator labeled before (never human ones).
    Unknown agent → ``NotFound`` listing the registered agents. Writes go through
    ``store.save_labels`` in chunks of ``policy.chunk_size``, each guarded by the etag read.
    """
    policy = policy or LabelingPolicy()
    store, evaluator = ports.episodes, ports.evaluator
    agent = ports.agents.get(request.agent_id)
    report = LabelReport(
        agent_id=request.agent_id,
        evaluator=evaluator.name,
        evaluator_version=evaluator.version,
        min_score=policy.min_score,
    )
    query = EpisodeQuery(
        agent_id=request.agent_id,
        labeled=None if request.relabel else False,
        limit=request.limit,
        order="oldest",
    )
    done = 0
    labeler = _Labeler(store=store, evaluator=evaluator, policy=policy, report=report)
    for episode in store.query(query):
        labeler.handle(episode, agent)
        done += 1
        if on_progress is not None and done % 100 == 0:
            on_progress(100)
        if report.stopped:
            break
    labeler.finish()
    if on_progress is not None and done % 100:
        on_progress(done % 100)
    return report


def label_new_episodes(
    episodes: Iterable[Episode], ports: LabelingPorts, policy: LabelingPolicy | None = None
) -> LabelReport:
    """The loop step: label the unlabeled ones among freshly changed episodes.

    ``episodes`` is what the trigger delivered (Cosmos change-feed documents parsed into ``Episode``
    — keep ``_etag`` as ``etag`` — or ``ChangeBatch.episodes``).

    Already-labeled episodes are ignored (so this step's own writes, which come back through
    the feed, do not loop). Episodes without an etag are read again first, so a label that
    arrived after the feed snapshot is never overwritten. Episodes of unknown agents and
    single evaluator failures are recorded in the report, never raised; they stay unlabeled
    for a later ``label-batch``. Only when the evaluator fails ``policy.max_consecutive_failures``
    times in a row (judge down) does it raise ``TransientProviderError`` — after writing what
    it labeled — so the host retries the batch rather than skipping it.
    """
    policy = policy or LabelingPolicy()
    store, agents, evaluator = ports.episodes, ports.agents, ports.evaluator
    report = LabelReport(
        evaluator=evaluator.name, evaluator_version=evaluator.version, min_score=policy.min_score
    )
    known: dict[str, AgentDefinition | None] = {}
    labeler = _Labeler(store=store, evaluator=evaluator, policy=policy, report=report)
    for episode in episodes:
        if episode.labeled or episode.human_labeled:
            continue
        if episode.etag is None:
            try:
                episode = store.get(episode.id, agent_id=episode.agent_id)
            except NotFound:
                continue
            if episode.labeled:
                continue
        if episode.agent_id not in known:
            try:
                known[episode.agent_id] = agents.get(episode.agent_id)
            except NotFound:
                known[episode.agent_id] = None
        agent = known[episode.agent_id]
        if agent is None:
            labeler.selected += 1
            labeler.fail(episode.id, "failed", f"agent {episode.agent_id!r} is not registered")
            continue
        labeler.handle(episode, agent)
        if report.stopped:
            break
    labeler.finish()
    if report.failed:
        logger.warning("labeling: %d episode(s) failed", report.failed, extra={"count": report.failed})
    if report.stopped:
        # The rest of the batch was never looked at: fail the step so the host retries it (the
        # change-feed trigger redelivers; run-loop keeps its cursor) instead of moving past it.
        raise TransientProviderError(
            f"labeling {report.stopped} ({report.labeled} labeled first); the batch will be retried",
            provider=f"evaluator:{evaluator.name}",
        )
    return report


def labels_needed(
    store: EpisodeStore, *, agent_id: str, limit: int | None = None, relabel: bool = False
) -> int:
    """How many episodes ``label_batch`` would consider (for a progress bar's total)."""
    _check_limit(limit)
    return store.count(EpisodeQuery(agent_id=agent_id, labeled=None if relabel else False, limit=limit))


__all__ = [
    "HumanLabel",
    "HumanLabelOutcome",
    "LabelBatchRequest",
    "LabelFailure",
    "LabelReport",
    "LabelingPolicy",
    "check_min_score",
    "label_batch",
    "label_episode",
    "label_new_episodes",
    "labels_needed",
]

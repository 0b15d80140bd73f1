"""Judge calibration: how far the judge's labels agree with people and golden answers, and whether the
hands-off loop may still build datasets from auto labels alone (the trust floor).

Called by ``judge-report``, ``GET /api/judge-report`` and the console, and by the dataset loop step
(``lightning/services/datasets.py``) before it builds from auto labels.

What is compared — every episode that has both a judge's verdict (an auto label) and a truth:

* a person's label on the same episode: the truth is "acceptable" for a confirmation, "not
  acceptable" for a correction (the agent's call was wrong) or a rejection (reward below the line);
* a golden answer to the same request (imported from a file): the truth is whether the agent's call
  is exactly the golden call. Only the agent's newest ``scan_limit`` auto-labeled episodes are looked
  at for these matches, so the report stays cheap on a store of millions.

The judge accepts an episode when its score is at least ``min_reward`` (the agent's accept line,
``DATASET_MIN_REWARD``). Figures, each with a 95% interval: ``agreement`` (same accept decision),
``precision`` (of the episodes the judge accepted, the share truly acceptable), ``recall`` (of the truly
acceptable ones, the share the judge accepted) — Wilson intervals — and ``cohen_kappa`` and the rank
correlation of scores (Spearman; truths without a person's score count 1/0) — percentile-bootstrap
intervals over episodes, seeded, so a report is reproducible. ``tool_confusion`` counts the judge's
expected tool against the right tool, where the right tool is known.

Trust floor: with at least ``min_compared`` compared episodes and a precision below ``min_precision``,
the judge is not trusted: auto labels alone no longer make training data until reviews bring its
precision back above the floor (new reviews are compared too, so the report recovers by itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from random import Random

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import Episode, is_confirmation, is_correction
from lightning.domain.finetune_format import normalize_query
from lightning.domain.golden import GoldenExample
from lightning.domain.model import Rate
from lightning.domain.statistics import bootstrap_interval, cohen_kappa, spearman
from lightning.ports.episodes import EpisodeQuery, EpisodeStore
from lightning.ports.golden import GoldenStore

NO_TOOL = "(none)"
"""The judge named no tool (no rubric intent matched)."""


class CalibrationPolicy(BaseModel):
    """From ``Settings``: DATASET_MIN_REWARD, JUDGE_MIN_PRECISION, JUDGE_MIN_COMPARED."""

    model_config = ConfigDict(frozen=True)

    min_reward: float = Field(default=0.7, ge=0, le=1, description="The accept line.")
    min_precision: float = Field(default=0.9, ge=0, le=1, description="The trust floor.")
    min_compared: int = Field(default=30, ge=1, description="Compared episodes before the floor applies.")
    scan_limit: int = Field(default=5000, ge=0, description="Newest auto-labeled episodes matched to golden.")
    resamples: int = Field(
        default=1000, ge=100, description="Bootstrap resamples for kappa and rank correlation."
    )


class Estimate(BaseModel):
    """A figure with its 95% interval (None when there is nothing to estimate from)."""

    model_config = ConfigDict(frozen=True)

    value: float | None = None
    low: float | None = None
    high: float | None = None


class Trust(BaseModel):
    """Whether the hands-off loop may build datasets from auto labels alone."""

    model_config = ConfigDict(frozen=True)

    trusted: bool
    reason: str
    min_precision: float
    min_compared: int


class Comparison(BaseModel):
    """One episode with both a judge's verdict and a truth."""

    model_config = ConfigDict(frozen=True)

    episode_id: str
    truth: str = Field(description="human or golden")
    judge_score: float
    true_score: float
    judge_accepts: bool
    truly_acceptable: bool
    judge_tool: str
    true_tool: str | None
    evaluator: str


class JudgeReport(BaseModel):
    """``judge-report``: the judge against people and golden answers."""

    agent_id: str
    evaluators: list[str] = Field(default_factory=list, description="Evaluators whose labels were compared.")
    min_reward: float
    compared: int = Field(description="Episodes with both a judge's verdict and a truth.")
    from_human: int = 0
    from_golden: int = 0
    agreement: Rate = Field(default_factory=Rate)
    precision: Rate = Field(default_factory=Rate)
    recall: Rate = Field(default_factory=Rate)
    cohen_kappa: Estimate = Field(default_factory=Estimate)
    rank_correlation: Estimate = Field(
        default_factory=Estimate, description="Spearman, judge vs truth scores."
    )
    tool_confusion: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="judge's expected tool → right tool → episodes."
    )
    trust: Trust


def _truth_from_human(episode: Episode, min_reward: float) -> tuple[bool, float, str | None] | None:
    human = episode.human_label
    if human is None:
        return None
    if is_correction(human, episode.action):
        return False, human.score, human.expected_tool
    if is_confirmation(human, episode.action, min_reward=min_reward):
        return True, human.score, episode.action.tool
    return human.score >= min_reward, human.score, None


def _truth_from_golden(episode: Episode, example: GoldenExample) -> tuple[bool, float, str | None]:
    right = (
        episode.action.tool == example.expected_tool
        and episode.action.arguments == example.expected_arguments
    )
    return right, 1.0 if right else 0.0, example.expected_tool


def compare(
    agent_id: str, *, episodes: EpisodeStore, golden: GoldenStore, policy: CalibrationPolicy
) -> list[Comparison]:
    """Every episode of ``agent_id`` with both a judge's verdict and a truth (see the module docstring)."""
    compared: list[Comparison] = []
    seen: set[str] = set()

    def add(episode: Episode, source: str, truth: tuple[bool, float, str | None]) -> None:
        auto = episode.auto_label
        assert auto is not None
        acceptable, true_score, true_tool = truth
        seen.add(episode.id)
        compared.append(
            Comparison(
                episode_id=episode.id,
                truth=source,
                judge_score=auto.score,
                true_score=true_score,
                judge_accepts=auto.score >= policy.min_reward,
                truly_acceptable=acceptable,
                judge_tool=auto.expected_tool or NO_TOOL,
                true_tool=true_tool,
                evaluator=f"{auto.evaluator or 'unknown'}@{auto.evaluator_version or '?'}",
            )
        )

    for episode in episodes.query(EpisodeQuery(agent_id=agent_id, human_labeled=True, order="newest")):
        truth = _truth_from_human(episode, policy.min_reward)
        if truth is not None and episode.auto_label is not None:
            add(episode, "human", truth)
    answers = {
        normalize_query(example.query): example
        for example in golden.list(agent_id)
        if example.source == "file"
    }
    if answers and policy.scan_limit:
        query = EpisodeQuery(agent_id=agent_id, labeled=True, human_labeled=False, limit=policy.scan_limit)
        for episode in episodes.query(query):
            example = answers.get(normalize_query(episode.state.query))
            if example is not None and episode.id not in seen and episode.auto_label is not None:
                add(episode, "golden", _truth_from_golden(episode, example))
    return compared


def _bootstrap(
    comparisons: list[Comparison],
    statistic: Callable[[list[Comparison]], float | None],
    *,
    resamples: int,
) -> tuple[float | None, float | None]:
    """A seeded percentile-bootstrap interval over episodes for a statistic of the comparisons (a
    resample where the statistic is undefined — e.g. all one class — counts as 0)."""
    indices = [float(i) for i in range(len(comparisons))]

    def over(sample: Sequence[float]) -> float:
        value = statistic([comparisons[int(i)] for i in sample])
        return 0.0 if value is None else float(value)

    interval = bootstrap_interval(indices, over, rng=Random(len(comparisons)), resamples=resamples)
    return interval.low, interval.high


def _kappa(items: list[Comparison]) -> float:
    return cohen_kappa([(c.judge_accepts, c.truly_acceptable) for c in items])


def _rank(items: list[Comparison]) -> float | None:
    return spearman([c.judge_score for c in items], [c.true_score for c in items])


def judge_report(
    agent_id: str, *, episodes: EpisodeStore, golden: GoldenStore, policy: CalibrationPolicy
) -> JudgeReport:
    """The judge report of ``agent_id`` (see the module docstring), with its trust decision."""
    comparisons = compare(agent_id, episodes=episodes, golden=golden, policy=policy)
    n = len(comparisons)
    accepted = [c for c in comparisons if c.judge_accepts]
    acceptable = [c for c in comparisons if c.truly_acceptable]
    precision = Rate.of(sum(c.truly_acceptable for c in accepted), len(accepted))
    report = JudgeReport(
        agent_id=agent_id,
        evaluators=sorted({c.evaluator for c in comparisons}),
        min_reward=policy.min_reward,
        compared=n,
        from_human=sum(c.truth == "human" for c in comparisons),
        from_golden=sum(c.truth == "golden" for c in comparisons),
        agreement=Rate.of(sum(c.judge_accepts == c.truly_acceptable for c in comparisons), n),
        precision=precision,
        recall=Rate.of(sum(c.judge_accepts for c in acceptable), len(acceptable)),
        tool_confusion=_confusion(comparisons),
        trust=trust_of(precision, n, policy=policy),
    )
    if n >= 2:
        kappa_low, kappa_high = _bootstrap(comparisons, _kappa, resamples=policy.resamples)
        report.cohen_kappa = Estimate(value=_kappa(comparisons), low=kappa_low, high=kappa_high)
        rank = _rank(comparisons)
        if rank is not None:
            rank_low, rank_high = _bootstrap(comparisons, _rank, resamples=policy.resamples)
            report.rank_correlation = Estimate(value=rank, low=rank_low, high=rank_high)
    return report


def _confusion(comparisons: list[Comparison]) -> dict[str, dict[str, int]]:
    counts: Counter[tuple[str, str]] = Counter(
        (c.judge_tool, c.true_tool) for c in comparisons if c.true_tool is not None
    )
    table: dict[str, dict[str, int]] = {}
    for (judge_tool, true_tool), count in sorted(counts.items()):
        table.setdefault(judge_tool, {})[true_tool] = count
    return table


def trust_of(precision: Rate, compared: int, *, policy: CalibrationPolicy) -> Trust:
    """The trust floor: untrusted only with enough evidence that the judge accepts wrong answers."""
    common = {"min_precision": policy.min_precision, "min_compared": policy.min_compared}
    if compared < policy.min_compared:
        return Trust(
            trusted=True,
            reason=f"{compared} of {policy.min_compared} compared episodes needed to check the judge: "
            "trusted until reviews show otherwise (review-queue lists what to review)",
            **common,
        )
    if precision.value is None:
        return Trust(
            trusted=True, reason=f"the judge accepted none of {compared} compared episodes", **common
        )
    figure = f"judge precision {precision.value:.2f} [{precision.low:.2f}, {precision.high:.2f}]"
    if precision.value < policy.min_precision:
        return Trust(
            trusted=False,
            reason=f"{figure} < {policy.min_precision:g} over {compared} compared episodes: the judge accepts "
            "wrong answers, so datasets are built from human labels only until reviews bring it back",
            **common,
        )
    return Trust(
        trusted=True,
        reason=f"{figure} >= {policy.min_precision:g} over {compared} compared episodes",
        **common,
    )

"""compare-versions: is the fine-tuned model really better than the one before it?

Called by ``lightning/commands/compare.py`` (``compare-versions``). The
service picks two sides of one agent's episodes from the ``EpisodeStore`` —
by date (the workshop: episodes before ``--before-date`` vs from
``--after-date`` on) or by ``model_version`` (``--baseline-model`` vs
``--candidate-model``, optionally inside a date window) — and fills the
workshop's before/after table with a 95% confidence interval on every figure
and a significance test on every difference.

Metrics per side and how they are counted:

- **Tool Selection Accuracy**: labeled episodes whose label says
  ``tool_correct``; when a label has no ``tool_correct`` but names an
  ``expected_tool``, the episode counts as correct when ``action.tool`` equals
  it. Labeled episodes with neither are left out of this metric and counted
  in the notes. Wilson interval; two-proportion z-test.
- **Response Completeness**: labeled episodes whose label says ``complete``
  (episodes whose label does not say are left out and counted). Wilson; z-test.
- **Average Reward Score**: the reward of labeled episodes. Bootstrap
  interval; bootstrap test of the difference of means.
- **Error Rate**: all episodes; an episode with an ``error`` is a failure.
  Wilson; z-test.
- **Latency p50 / p95**: episodes with ``latency_ms``. Bootstrap; bootstrap test.
- **Episodes**: how many (and how many labeled); no test.

The verdict (``decide_verdict``) looks at the three *primary* metrics — tool
accuracy, average reward, error rate (lower is better):

1. If any primary metric has fewer than ``min_samples`` (default 30) usable
   episodes on either side: ``not enough data (n=…)`` — no verdict.
2. Otherwise the three p-values are Holm-adjusted (so three chances at
   "significant" do not inflate false alarms) and compared with
   ``1 - confidence`` (0.05).
3. Any significant regression → ``candidate worse`` (a regression is never
   traded for an improvement elsewhere); at least one significant improvement
   and no significant regression → ``candidate better``; else ``no significant
   difference``.

Completeness and latency are reported with intervals and p-values but do not
decide the verdict: completeness is often unknown (judge-only), and latency
depends on load as much as on the model.

Every figure says where it comes from (``MetricComparison.source``): ``judge``
when any label behind it was given by an evaluator (or a reward has no label to
say who gave it), ``ground_truth`` when it is recorded on the episodes (errors,
latency) or rests on people's labels only. The service returns data; the
tables, markdown and the words around them are ``lightning.commands.presentation``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import Episode, format_timestamp, utcnow
from lightning.domain.errors import InvalidInput
from lightning.domain.statistics import (
    DEFAULT_RESAMPLES,
    Interval,
    Statistic,
    bootstrap_compare_many,
    bootstrap_interval,
    holm_adjust,
    mean,
    newcombe_difference_interval,
    percentile_of,
    two_proportion_z_test,
    wilson_interval,
)
from lightning.ports.episodes import EpisodeQuery, EpisodeStore

BEFORE_LABEL = "Before Fine-Tuning"
AFTER_LABEL = "After Fine-Tuning"

MetricUnit = Literal[
    "percent",  # a proportion in [0, 1], shown as a percentage
    "score",  # a reward in [0, 1], shown with three decimals
    "ms",  # milliseconds
]

Outcome = Literal[
    "better",  # at least one primary metric improved significantly, none regressed
    "no_difference",  # no primary metric changed significantly
    "worse",  # at least one primary metric regressed significantly
    "not_enough_data",  # a primary metric has fewer than min_samples episodes on a side
]

FigureSource = Literal[
    "ground_truth",  # known: recorded on the episodes (errors, latency, counts) or labeled by people
    "judge",  # estimated: at least one label behind the figure came from an evaluator (rubric or LLM judge)
]

MetricResult = Literal[
    "better",  # significant change in the good direction
    "worse",  # significant change in the bad direction
    "no_difference",  # not significant
    "not_enough_data",  # fewer than min_samples on a side: not tested
]


class CompareRequest(BaseModel):
    """Which episodes to compare and how strict to be (the ``compare-versions`` flags)."""

    model_config = ConfigDict(frozen=True)

    agent_id: str = Field(min_length=1)
    before_date: datetime | None = Field(default=None, description="Before side: timestamp < before_date.")
    after_date: datetime | None = Field(default=None, description="After side: timestamp >= after_date.")
    baseline_model: str | None = Field(default=None, description="Before side: this model_version.")
    candidate_model: str | None = Field(default=None, description="After side: this model_version.")
    since: datetime | None = Field(default=None, description="Both sides: timestamp >= since.")
    until: datetime | None = Field(default=None, description="Both sides: timestamp < until.")
    min_samples: int = Field(default=30, ge=2, description="Fewest episodes per side to test a metric.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    resamples: int = Field(default=DEFAULT_RESAMPLES, ge=100, le=100_000)
    seed: int = 0


class SideSpec(BaseModel):
    """The filter that selects one side's episodes."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(description="Column header: 'Before Fine-Tuning', 'Candidate (ft:…)'.")
    role: Literal["baseline", "candidate"]
    model_version: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self, agent_id: str) -> str:
        parts = [f"agent {agent_id!r}"]
        if self.model_version is not None:
            parts.append(f"model_version {self.model_version!r}")
        if self.since is not None:
            parts.append(f"timestamp >= {format_timestamp(self.since)}")
        if self.until is not None:
            parts.append(f"timestamp < {format_timestamp(self.until)}")
        return ", ".join(parts)


class SideSummary(BaseModel):
    """Counts for one side, and which filter chose it."""

    label: str
    role: Literal["baseline", "candidate"]
    filter: str = Field(description="The episodes this side holds, in words.")
    episodes: int
    labeled: int
    tool_unknown: int = Field(description="Labeled episodes left out of tool accuracy (no tool information).")
    completeness_unknown: int = Field(description="Labeled episodes left out of completeness.")
    without_latency: int
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    model_versions: dict[str, int] = Field(
        default_factory=dict, description="Episodes per model_version on this side ('unknown' when unset)."
    )
    label_sources: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Labeled episodes per who labeled them: 'human', the evaluator's name for auto labels "
            "('evaluator' when unnamed), or 'unknown' for a reward with no label."
        ),
    )


class SideMetric(BaseModel):
    """One metric on one side: its value and confidence interval over ``n`` episodes."""

    n: int
    value: float | None = None
    low: float | None = None
    high: float | None = None
    successes: int | None = Field(default=None, description="For proportions: the numerator.")


class MetricComparison(BaseModel):
    """One row of the before/after table."""

    key: str
    name: str
    unit: MetricUnit
    higher_is_better: bool
    primary: bool = Field(description="Whether this metric decides the verdict.")
    source: FigureSource = Field(
        description="Where the figures come from: 'judge' (an evaluator's estimate) or 'ground_truth'."
    )
    test: str = Field(description="The significance test used for the difference.")
    baseline: SideMetric
    candidate: SideMetric
    difference: float | None = Field(default=None, description="Candidate minus baseline.")
    difference_low: float | None = None
    difference_high: float | None = None
    p_value: float | None = Field(default=None, description="Two-sided p-value of the test.")
    adjusted_p_value: float | None = Field(
        default=None, description="Holm-adjusted over the primary metrics (primary metrics only)."
    )
    result: MetricResult
    note: str | None = None

    @property
    def decision_p_value(self) -> float | None:
        return self.adjusted_p_value if self.adjusted_p_value is not None else self.p_value


class Verdict(BaseModel):
    outcome: Outcome
    line: str = Field(description="The plain verdict line, e.g. 'Verdict: candidate better'.")
    metrics: list[str] = Field(
        default_factory=list,
        description=(
            "Keys of the primary metrics behind the outcome: those that changed significantly "
            "(better: the improvements; worse: the regressions), or the first one short of data."
        ),
    )
    short_side: Literal["baseline", "candidate"] | None = Field(
        default=None, description="not_enough_data: the side with too few usable episodes."
    )


class ComparisonReport(BaseModel):
    """Everything ``compare-versions`` prints, as data (``--json``)."""

    agent_id: str
    mode: Literal["dates", "models"]
    baseline: SideSummary
    candidate: SideSummary
    metrics: list[MetricComparison]
    verdict: Verdict
    confidence: float
    min_samples: int
    resamples: int
    seed: int
    notes: list[str] = Field(default_factory=list)
    generated_at: datetime = Field(default_factory=utcnow)

    def metric(self, key: str) -> MetricComparison:
        for item in self.metrics:
            if item.key == key:
                return item
        raise KeyError(key)


# --- choosing the two sides --------------------------------------------------------------------


def plan_sides(request: CompareRequest) -> tuple[SideSpec, SideSpec]:
    """Turn the flags into two filters, refusing combinations that cannot mean anything."""
    by_model = request.baseline_model is not None or request.candidate_model is not None
    if by_model and (request.baseline_model is None or request.candidate_model is None):
        raise InvalidInput(
            "--baseline-model and --candidate-model go together: give both model versions to compare",
            field="baseline_model" if request.baseline_model is None else "candidate_model",
        )
    if not by_model and (request.before_date is None or request.after_date is None):
        raise InvalidInput(
            "say which episodes to compare: --before-date and --after-date "
            "(e.g. --before-date 2026-02-07T00:00:00Z --after-date 2026-02-07T12:00:00Z), "
            "or --baseline-model and --candidate-model",
            field="before_date" if request.before_date is None else "after_date",
        )
    if (
        request.before_date is not None
        and request.after_date is not None
        and request.before_date > request.after_date
    ):
        raise InvalidInput(
            f"--before-date {format_timestamp(request.before_date)} is later than --after-date "
            f"{format_timestamp(request.after_date)}: the before side must end before the after side starts",
            field="before_date",
        )
    if request.since is not None and request.until is not None and request.since >= request.until:
        raise InvalidInput(
            f"--since {format_timestamp(request.since)} must be earlier than --until "
            f"{format_timestamp(request.until)}",
            field="since",
        )
    if (
        by_model
        and request.baseline_model == request.candidate_model
        and request.before_date is None
        and request.after_date is None
    ):
        raise InvalidInput(
            f"--baseline-model and --candidate-model are both {request.baseline_model!r}; "
            "name two different model versions, or add --before-date/--after-date to split them by time",
            field="candidate_model",
        )
    baseline = SideSpec(
        label=f"Baseline ({request.baseline_model})" if by_model else BEFORE_LABEL,
        role="baseline",
        model_version=request.baseline_model,
        since=request.since,
        until=_earliest(request.before_date, request.until),
    )
    candidate = SideSpec(
        label=f"Candidate ({request.candidate_model})" if by_model else AFTER_LABEL,
        role="candidate",
        model_version=request.candidate_model,
        since=_latest(request.after_date, request.since),
        until=request.until,
    )
    return baseline, candidate


def _earliest(*values: datetime | None) -> datetime | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _latest(*values: datetime | None) -> datetime | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


# --- reading one side --------------------------------------------------------------------------


@dataclass
class SideData:
    """The numbers one side contributes, gathered in one pass over its episodes."""

    episodes: int = 0
    labeled: int = 0
    tool_known: int = 0
    tool_correct: int = 0
    complete_known: int = 0
    complete: int = 0
    errors: int = 0
    rewards: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    model_versions: Counter[str] = field(default_factory=Counter)
    # Who labeled the labeled episodes, and how many figures of each kind rest on an evaluator's label.
    label_sources: Counter[str] = field(default_factory=Counter)
    reward_judged: int = 0
    tool_judged: int = 0
    complete_judged: int = 0

    def add(self, episode: Episode) -> None:
        self.episodes += 1
        self.first = episode.timestamp if self.first is None else min(self.first, episode.timestamp)
        self.last = episode.timestamp if self.last is None else max(self.last, episode.timestamp)
        self.model_versions[episode.model_version or "unknown"] += 1
        if episode.error:
            self.errors += 1
        if episode.latency_ms is not None:
            self.latencies.append(float(episode.latency_ms))
        label = episode.label
        reward = episode.reward
        if reward is None and label is not None:
            reward = label.score
        # An unlabeled episode has no reward, tool or completeness judgement yet: it counts only above.
        if not (episode.labeled or label is not None) or reward is None:
            return
        self.labeled += 1
        self.rewards.append(float(reward))
        # Only a person's label is ground truth; a reward with no label to say who gave it is not.
        judged = label is None or label.source != "human"
        self.reward_judged += judged
        self.label_sources[_labeled_by(episode)] += 1
        correct = tool_correct(episode)
        if correct is not None:
            self.tool_known += 1
            self.tool_correct += int(correct)
            self.tool_judged += judged
        if label is not None and label.complete is not None:
            self.complete_known += 1
            self.complete += int(label.complete)
            self.complete_judged += judged


def _labeled_by(episode: Episode) -> str:
    label = episode.label
    if label is None:
        return "unknown"
    if label.source == "human":
        return "human"
    return label.evaluator or "evaluator"


def tool_correct(episode: Episode) -> bool | None:
    """Whether the episode's tool was right per its label; None when the label cannot say."""
    label = episode.label
    if label is None:
        return None
    if label.tool_correct is not None:
        return label.tool_correct
    if label.expected_tool is not None:
        return episode.action.tool == label.expected_tool
    return None


def collect_side(store: EpisodeStore, agent_id: str, *, spec: SideSpec) -> SideData:
    """Stream one side's episodes from the store into counts (never holds the episodes themselves)."""
    query = EpisodeQuery(
        agent_id=agent_id,
        model_version=spec.model_version,
        since=spec.since,
        until=spec.until,
        order="oldest",
    )
    data = SideData()
    for episode in store.query(query):
        data.add(episode)
    return data


def _summary(spec: SideSpec, agent_id: str, data: SideData) -> SideSummary:
    return SideSummary(
        label=spec.label,
        role=spec.role,
        filter=spec.describe(agent_id),
        episodes=data.episodes,
        labeled=data.labeled,
        tool_unknown=data.labeled - data.tool_known,
        completeness_unknown=data.labeled - data.complete_known,
        without_latency=data.episodes - len(data.latencies),
        first_timestamp=data.first,
        last_timestamp=data.last,
        model_versions=dict(sorted(data.model_versions.items())),
        label_sources=dict(sorted(data.label_sources.items())),
    )


# --- the metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """How strict the comparison is (from ``CompareRequest``)."""

    min_samples: int = 30
    confidence: float = 0.95
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0

    @classmethod
    def of(cls, request: CompareRequest) -> Policy:
        return cls(request.min_samples, request.confidence, request.resamples, request.seed)

    def rng(self, key: str) -> Random:
        # One generator per metric, seeded by name: each metric's numbers do not depend on the others.
        return Random(f"{self.seed}:{key}")


def _proportion_side(successes: int, n: int, confidence: float) -> SideMetric:
    if n == 0:
        return SideMetric(n=0)
    interval = wilson_interval(successes, n, confidence=confidence)
    return SideMetric(n=n, value=successes / n, low=interval.low, high=interval.high, successes=successes)


def _not_enough(baseline_n: int, candidate_n: int, policy: Policy) -> str | None:
    short = [n for n in (baseline_n, candidate_n) if n < policy.min_samples]
    if not short:
        return None
    return f"not enough data (n={min(short)})"


def compare_proportion(
    *,
    key: str,
    name: str,
    higher_is_better: bool,
    primary: bool,
    source: FigureSource,
    baseline: tuple[int, int],
    candidate: tuple[int, int],
    policy: Policy,
) -> MetricComparison:
    """One proportion row: Wilson per side, Newcombe for the difference, the pooled z-test."""
    confidence = policy.confidence
    (x_a, n_a), (x_b, n_b) = baseline, candidate
    row = MetricComparison(
        key=key,
        name=name,
        unit="percent",
        higher_is_better=higher_is_better,
        primary=primary,
        source=source,
        test="two-proportion z-test",
        baseline=_proportion_side(x_a, n_a, confidence),
        candidate=_proportion_side(x_b, n_b, confidence),
        result="not_enough_data",
    )
    short = _not_enough(n_a, n_b, policy)
    if short is not None:
        return row.model_copy(update={"note": short})
    difference = newcombe_difference_interval(x_a, n_a, x_b, n_b, confidence=confidence)
    test = two_proportion_z_test(x_a, n_a, x_b, n_b)
    return row.model_copy(
        update={
            "difference": x_b / n_b - x_a / n_a,
            "difference_low": difference.low,
            "difference_high": difference.high,
            "p_value": test.p_value,
            "result": _result(x_b / n_b - x_a / n_a, test.p_value, higher_is_better, 1 - confidence),
        }
    )


@dataclass(frozen=True)
class BootstrapMetric:
    """One row computed by the bootstrap: ``statistic`` is ``mean`` or a percentile like ``p95``."""

    key: str
    name: str
    statistic: str

    def function(self) -> Statistic:
        return mean if self.statistic == "mean" else percentile_of(float(self.statistic.lstrip("p")))

    @property
    def test(self) -> str:
        return (
            "bootstrap (difference of means)" if self.statistic == "mean" else f"bootstrap ({self.statistic})"
        )


def compare_bootstrap(
    *,
    metrics: Sequence[BootstrapMetric],
    unit: MetricUnit,
    higher_is_better: bool,
    primary: bool,
    source: FigureSource,
    baseline: Sequence[float],
    candidate: Sequence[float],
    policy: Policy,
) -> list[MetricComparison]:
    """Mean/percentile rows over the same two samples: percentile bootstrap per side and for the
    difference, bootstrap test; all rows share one set of resamples (drawing them is the cost)."""
    confidence, resamples = policy.confidence, policy.resamples
    rng = policy.rng("+".join(metric.key for metric in metrics))
    rows = [
        MetricComparison(
            key=metric.key,
            name=metric.name,
            unit=unit,
            higher_is_better=higher_is_better,
            primary=primary,
            source=source,
            test=metric.test,
            baseline=SideMetric(n=len(baseline)),
            candidate=SideMetric(n=len(candidate)),
            result="not_enough_data",
        )
        for metric in metrics
    ]
    short = _not_enough(len(baseline), len(candidate), policy)
    if short is not None:
        # Each side still gets its figure and interval; only the comparison is withheld.
        out = []
        for metric, row in zip(metrics, rows, strict=True):
            statistic = metric.function()
            sides: dict[str, object] = {}
            for role, values in (("baseline", baseline), ("candidate", candidate)):
                if values:
                    interval = bootstrap_interval(
                        values, statistic, rng=rng, resamples=resamples, confidence=confidence
                    )
                    sides[role] = _side(len(values), statistic(values), interval)
            out.append(row.model_copy(update={**sides, "note": short}))
        return out
    results = bootstrap_compare_many(
        baseline,
        candidate,
        [metric.function() for metric in metrics],
        rng=rng,
        resamples=resamples,
        confidence=confidence,
    )
    return [
        row.model_copy(
            update={
                "baseline": _side(len(baseline), result.estimate_a, result.interval_a),
                "candidate": _side(len(candidate), result.estimate_b, result.interval_b),
                "difference": result.difference,
                "difference_low": result.difference_interval.low,
                "difference_high": result.difference_interval.high,
                "p_value": result.p_value,
                "result": _result(result.difference, result.p_value, higher_is_better, 1 - confidence),
            }
        )
        for row, result in zip(rows, results, strict=True)
    ]


def _side(n: int, value: float, interval: Interval) -> SideMetric:
    return SideMetric(n=n, value=value, low=interval.low, high=interval.high)


def _result(difference: float, p_value: float, higher_is_better: bool, alpha: float) -> MetricResult:
    if p_value >= alpha or difference == 0:
        return "no_difference"
    return "better" if (difference > 0) == higher_is_better else "worse"


def compute_metrics(
    *, baseline: SideData, candidate: SideData, request: CompareRequest
) -> list[MetricComparison]:
    """Every row of the table, primary metrics Holm-adjusted together."""
    policy = Policy.of(request)
    rows = [
        compare_proportion(
            key="tool_accuracy",
            name="Tool Selection Accuracy",
            higher_is_better=True,
            primary=True,
            source=_label_source(
                baseline.tool_known + candidate.tool_known, baseline.tool_judged + candidate.tool_judged
            ),
            baseline=(baseline.tool_correct, baseline.tool_known),
            candidate=(candidate.tool_correct, candidate.tool_known),
            policy=policy,
        ),
        compare_proportion(
            key="completeness",
            name="Response Completeness",
            higher_is_better=True,
            primary=False,
            source=_label_source(
                baseline.complete_known + candidate.complete_known,
                baseline.complete_judged + candidate.complete_judged,
            ),
            baseline=(baseline.complete, baseline.complete_known),
            candidate=(candidate.complete, candidate.complete_known),
            policy=policy,
        ),
        *compare_bootstrap(
            metrics=[BootstrapMetric("avg_reward", "Average Reward Score", "mean")],
            unit="score",
            higher_is_better=True,
            primary=True,
            source=_label_source(
                baseline.labeled + candidate.labeled, baseline.reward_judged + candidate.reward_judged
            ),
            baseline=baseline.rewards,
            candidate=candidate.rewards,
            policy=policy,
        ),
        compare_proportion(
            key="error_rate",
            name="Error Rate",
            higher_is_better=False,
            primary=True,
            source="ground_truth",
            baseline=(baseline.errors, baseline.episodes),
            candidate=(candidate.errors, candidate.episodes),
            policy=policy,
        ),
        *compare_bootstrap(
            metrics=[
                BootstrapMetric("latency_p50", "Latency p50", "p50"),
                BootstrapMetric("latency_p95", "Latency p95", "p95"),
            ],
            unit="ms",
            higher_is_better=False,
            primary=False,
            source="ground_truth",
            baseline=baseline.latencies,
            candidate=candidate.latencies,
            policy=policy,
        ),
    ]
    return adjust_primary(rows, alpha=1 - request.confidence)


def _label_source(counted: int, judged: int) -> FigureSource:
    """A figure from labels is ground truth only when people gave every label behind it."""
    return "ground_truth" if counted and not judged else "judge"


def adjust_primary(rows: Sequence[MetricComparison], *, alpha: float) -> list[MetricComparison]:
    """Holm-adjust the primary metrics' p-values and re-decide their results on the adjusted values."""
    tested = [i for i, row in enumerate(rows) if row.primary and row.p_value is not None]
    adjusted = holm_adjust([rows[i].p_value or 0.0 for i in tested])
    out = list(rows)
    for index, p_adj in zip(tested, adjusted, strict=True):
        row = out[index]
        assert row.difference is not None
        out[index] = row.model_copy(
            update={
                "adjusted_p_value": p_adj,
                "result": _result(row.difference, p_adj, row.higher_is_better, alpha),
            }
        )
    return out


def decide_verdict(
    metrics: Sequence[MetricComparison], *, baseline: SideSummary, candidate: SideSummary, min_samples: int
) -> Verdict:
    """The verdict from the primary metrics (rule in the module docstring), with the metrics behind it."""
    primary = [row for row in metrics if row.primary]
    for row in primary:
        for side, summary in ((row.baseline, baseline), (row.candidate, candidate)):
            if side.n < min_samples:
                return Verdict(
                    outcome="not_enough_data",
                    line=f"Verdict: not enough data (n={side.n})",
                    metrics=[row.key],
                    short_side=summary.role,
                )
    worse = [row.key for row in primary if row.result == "worse"]
    better = [row.key for row in primary if row.result == "better"]
    if worse:
        return Verdict(outcome="worse", line="Verdict: candidate worse", metrics=worse)
    if better:
        return Verdict(outcome="better", line="Verdict: candidate better", metrics=better)
    return Verdict(outcome="no_difference", line="Verdict: no significant difference")


def _notes(baseline: SideSummary, candidate: SideSummary, request: CompareRequest) -> list[str]:
    notes: list[str] = []
    if baseline.tool_unknown or candidate.tool_unknown:
        notes.append(
            f"Tool Selection Accuracy leaves out labeled episodes whose label names no expected tool: "
            f"{baseline.tool_unknown} on the {baseline.label} side, {candidate.tool_unknown} on the "
            f"{candidate.label} side."
        )
    if baseline.completeness_unknown or candidate.completeness_unknown:
        notes.append(
            f"Response Completeness leaves out labeled episodes whose label does not say: "
            f"{baseline.completeness_unknown} on the {baseline.label} side, "
            f"{candidate.completeness_unknown} on the {candidate.label} side."
        )
    unlabeled = (baseline.episodes - baseline.labeled, candidate.episodes - candidate.labeled)
    if any(unlabeled):
        notes.append(
            f"Unlabeled episodes ({unlabeled[0]} on the {baseline.label} side, {unlabeled[1]} on the "
            f"{candidate.label} side) count toward Error Rate, latency and Episodes only; "
            "label them to include them in accuracy, completeness and reward."
        )
    if baseline.without_latency or candidate.without_latency:
        notes.append(
            f"Latency leaves out episodes with no latency_ms: {baseline.without_latency} on the "
            f"{baseline.label} side, {candidate.without_latency} on the {candidate.label} side."
        )
    if len(baseline.model_versions) > 1 or len(candidate.model_versions) > 1:
        notes.append(
            "A side mixes model versions (see model_versions in --json); compare by "
            "--baseline-model/--candidate-model to separate them."
        )
    confidence = round(request.confidence * 100)
    notes.append(
        f"{confidence}% intervals: Wilson (proportions), percentile bootstrap with {request.resamples} "
        f"resamples, seed {request.seed} (reward, latency). The p-values of the primary metrics "
        "(tool accuracy, average reward, error rate) are Holm-adjusted."
    )
    return notes


def compare_versions(request: CompareRequest, *, episodes: EpisodeStore) -> ComparisonReport:
    """Compare two sides of one agent's episodes; ``InvalidInput`` for bad flags or an empty side.

    Signature for callers: ``compare_versions(CompareRequest(...), episodes=store) -> ComparisonReport``.
    """
    baseline_spec, candidate_spec = plan_sides(request)
    sides: list[tuple[SideSpec, SideData]] = []
    for spec in (baseline_spec, candidate_spec):
        data = collect_side(episodes, request.agent_id, spec=spec)
        if data.episodes == 0:
            raise InvalidInput(
                f"no episodes for the {spec.label} side ({spec.describe(request.agent_id)}); "
                f"check the dates/model names, or list them with list-episodes --agent-id {request.agent_id}",
                field=spec.role,
            )
        sides.append((spec, data))
    (base_spec, base_data), (cand_spec, cand_data) = sides
    baseline = _summary(base_spec, request.agent_id, base_data)
    candidate = _summary(cand_spec, request.agent_id, cand_data)
    metrics = compute_metrics(baseline=base_data, candidate=cand_data, request=request)
    return ComparisonReport(
        agent_id=request.agent_id,
        mode="models" if request.baseline_model is not None else "dates",
        baseline=baseline,
        candidate=candidate,
        metrics=metrics,
        verdict=decide_verdict(
            metrics, baseline=baseline, candidate=candidate, min_samples=request.min_samples
        ),
        confidence=request.confidence,
        min_samples=request.min_samples,
        resamples=request.resamples,
        seed=request.seed,
        notes=_notes(baseline, candidate, request),
    )

"""The gate is bounded: a time budget measured on an injected clock, and failures inside it are data.

The chat fake answers one request per 0.1 simulated second (``StepClock``); the world has 30 held-out
requests (10 validation + 20 recent). Rounds of 5 requests × 2 models take 1 simulated second each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode
from lightning.domain.errors import ProviderError, TransientProviderError
from lightning.ports.evaluator import Evaluation
from lightning.services.promotion import PromotionRequest, promote_model
from tests.unit.promotion.conftest import AGENT, FT_MODEL, World


class StepClock:
    """now() moves only when a model call is made (``tick``)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)

    def tick(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def _timed(world: World, clock: StepClock, per_call: float = 0.1) -> None:
    inner = world.chat.choose_tool

    def choose_tool(**kwargs: Any) -> Any:
        clock.tick(per_call)
        return inner(**kwargs)

    world.chat.choose_tool = choose_tool  # type: ignore[method-assign]
    world.chat.clock = clock


def _promote(world: World, clock: StepClock, **policy: Any) -> Any:
    ports = dataclasses.replace(world.ports(), clock=clock)
    return promote_model(
        PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, mark_active=True),
        ports,
        world.policy.model_copy(update={"round_size": 5, **policy}),
    )


def test_a_gate_within_its_budget_replays_everything(world: World) -> None:
    clock = StepClock()
    _timed(world, clock)
    outcome = _promote(world, clock, time_budget_seconds=10)
    candidate = outcome.decision.candidate
    assert outcome.action == "promoted"
    assert (candidate.examples, candidate.planned, candidate.stopped_early) == (30, 30, None)
    assert clock.t - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(seconds=6)


def test_a_gate_out_of_time_decides_on_what_it_replayed_when_that_is_enough(world: World) -> None:
    clock = StepClock()
    _timed(world, clock)
    outcome = _promote(world, clock, time_budget_seconds=4.5)
    candidate, baseline = outcome.decision.candidate, outcome.decision.baseline
    assert outcome.action == "promoted"
    # 4 rounds fit (4 s); a fifth would need the 1 s the longest round took, and only 0.5 s is left.
    assert (candidate.examples, candidate.planned) == (20, 30)
    assert baseline.examples == 20  # both models on the same requests
    assert "time budget of 4.5s was spent after 20 of 30" in (candidate.stopped_early or "")
    assert clock.t - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(seconds=4)  # never past the budget


def test_a_gate_that_replayed_too_little_refuses_and_says_why(world: World) -> None:
    clock = StepClock()
    _timed(world, clock)
    outcome = _promote(world, clock, time_budget_seconds=2.5)
    assert outcome.action == "rejected"
    reason = outcome.decision.reason
    assert reason.startswith("only 10 of 30 held-out requests were replayed")
    assert "GATE_TIME_BUDGET_SECONDS" in reason
    assert world.rollout.calls == []


def test_no_model_call_starts_after_the_budget_even_inside_a_round(world: World) -> None:
    clock = StepClock()
    _timed(world, clock, per_call=0.4)  # one round (10 calls) takes 4 s: the budget ends inside it
    outcome = _promote(world, clock, time_budget_seconds=3, round_size=30)
    candidate = outcome.decision.candidate
    # The candidate answers 8 requests in 3.2 s; the baseline gets no time: nothing was replayed by both.
    assert candidate.examples == 0
    assert outcome.action == "rejected"
    assert clock.t - datetime(2026, 1, 1, tzinfo=UTC) <= timedelta(seconds=3.2)


class FlakyJudge:
    """The rubric, except that it fails to score every ``every``-th answer of ``model``."""

    def __init__(self, model: str, every: int) -> None:
        self.inner = RubricEvaluator()
        self.name, self.version = self.inner.name, self.inner.version
        self.model, self.every, self.seen = model, every, 0

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
        return self.inner.evaluate(episode, agent)

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        out: list[Evaluation | Exception] = []
        for episode, agent in items:
            if episode.model_version == self.model:
                self.seen += 1
                if self.seen % self.every == 0:
                    out.append(TransientProviderError("judge answered 429", status_code=429, retry_after=2))
                    continue
            out.append(self.inner.evaluate(episode, agent))
        return out


def test_a_few_judge_failures_are_error_rows_not_a_lost_gate(world: World) -> None:
    world.evaluator = FlakyJudge(FT_MODEL, every=15)  # type: ignore[assignment]
    clock = StepClock()
    outcome = _promote(world, clock)
    candidate = outcome.decision.candidate
    assert outcome.action == "promoted"
    assert candidate.judge_failures == 2
    assert candidate.judge.n == 28  # the judge's figures leave the failed answers out
    rows = [r for r in candidate.details["results"] if r["judge_error"]]
    assert len(rows) == 2
    assert all("429" in r["judge_error"] and r["judge_reward"] is None for r in rows)


def test_judge_failures_past_the_threshold_refuse_the_gate_and_say_so(world: World) -> None:
    world.evaluator = FlakyJudge(FT_MODEL, every=5)  # 6 of 30 = 20%
    outcome = _promote(world, StepClock(), max_judge_failure_rate=0.1)
    assert outcome.action == "rejected"
    assert "the judge could not score 6 of 30 answers" in outcome.decision.reason
    assert "GATE_MAX_JUDGE_FAILURE_RATE 10%" in outcome.decision.reason


def test_model_call_failures_are_error_rows_until_every_call_fails(world: World) -> None:
    inner = world.chat.choose_tool
    calls = {"n": 0}

    def choose_tool(**kwargs: Any) -> Any:
        if kwargs["model"] == FT_MODEL:
            calls["n"] += 1
            if calls["n"] % 10 == 0:
                raise TransientProviderError("503 from the model", status_code=503)
        return inner(**kwargs)

    world.chat.choose_tool = choose_tool  # type: ignore[method-assign]
    outcome = _promote(world, StepClock())
    candidate = outcome.decision.candidate
    assert candidate.error_rate.hits == 3  # observed, and compared with the baseline's by the error test
    world.chat.down.add("local-base")
    with pytest.raises(ProviderError, match="could not evaluate local-base"):
        _promote(world, StepClock())

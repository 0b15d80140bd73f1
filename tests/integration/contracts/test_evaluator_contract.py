"""The Evaluator contract: the rubric and the task-adherence judge (real azure-ai-evaluation + openai SDK
code against the judge stand-in, ``tests/standins/judge.py``) give verdicts of the same shape.

The judge's verdicts are scripted by the stand-in (a judge model's grading is not something a local test
can reproduce): here it fails the request answered with the wrong tool and passes the rest, so the
contract checks what the adapters own — a reward in [0, 1] from the verdict, the reason kept, the
evaluator named, and tool correctness from the agent's rubric.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.agent import AgentDefinition
from lightning.ports.evaluator import Evaluator
from tests.fakes.episodes import make_episode
from tests.standins.judge import JudgeStandIn

WRONG_TOOL_QUERY = "Predict next month's sales forecast"


@pytest.fixture(scope="module")
def judge_standin() -> Iterator[JudgeStandIn]:
    standin = JudgeStandIn().start()
    try:
        yield standin
    finally:
        standin.stop()


class _StaticTokenCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        del scopes, kwargs
        return AccessToken("judge-test-token", int(time.time()) + 3600)


@pytest.fixture(params=["rubric", pytest.param("judge", marks=pytest.mark.azure)])
def evaluator(request: pytest.FixtureRequest) -> Evaluator:
    if request.param == "rubric":
        from lightning.adapters.evaluators.rubric import RubricEvaluator

        return RubricEvaluator()
    from lightning.adapters.evaluators.judge import TaskAdherenceJudge

    standin: JudgeStandIn = request.getfixturevalue("judge_standin")
    standin.reset()
    standin.verdicts.append(
        (
            WRONG_TOOL_QUERY,
            {"score": 0, "reason": "Used analyze_churn for a forecast.", "status": "completed"},
        )
    )
    return TaskAdherenceJudge(
        endpoint=standin.endpoint,
        deployment=standin.deployment,
        api_version="2025-04-01-preview",
        credential=_StaticTokenCredential(),
    )


@pytest.fixture(scope="module")
def agent() -> AgentDefinition:
    return YamlAgentRegistry().get("autonomous-agent")


def test_a_verdict_is_a_reward_with_a_reason_and_names_its_evaluator(
    evaluator: Evaluator, agent: AgentDefinition
) -> None:
    verdict = evaluator.evaluate(make_episode(response="Churn in Q4 2025 was 12%."), agent)
    assert 0.0 <= verdict.score <= 1.0
    assert verdict.reason.strip()
    assert verdict.evaluator == evaluator.name
    assert verdict.evaluator_version == evaluator.version


def test_the_right_tool_outscores_the_wrong_one(evaluator: Evaluator, agent: AgentDefinition) -> None:
    right = evaluator.evaluate(make_episode("right", response="Churn in Q4 2025 was 12%."), agent)
    wrong = evaluator.evaluate(make_episode("wrong", query=WRONG_TOOL_QUERY, tool="analyze_churn"), agent)
    assert right.score > wrong.score
    assert (right.expected_tool, right.tool_correct) == ("analyze_churn", True)
    assert (wrong.expected_tool, wrong.tool_correct) == ("sales_forecast", False)


def test_the_same_episode_gets_the_same_verdict(evaluator: Evaluator, agent: AgentDefinition) -> None:
    episode = make_episode(query=WRONG_TOOL_QUERY, tool="analyze_churn")
    assert evaluator.evaluate(episode, agent) == evaluator.evaluate(episode, agent)


def test_evaluate_many_answers_in_order_like_evaluate(evaluator: Evaluator, agent: AgentDefinition) -> None:
    episodes = [
        make_episode("a", response="Churn in Q4 2025 was 12%."),
        make_episode("b", query=WRONG_TOOL_QUERY, tool="analyze_churn"),
        make_episode("c", response="Churn in Q4 2025 was 12%."),
    ]
    many = evaluator.evaluate_many([(episode, agent) for episode in episodes])
    one_by_one = [evaluator.evaluate(episode, agent) for episode in episodes]
    assert many == one_by_one
    assert evaluator.evaluate_many([]) == []


def test_a_failure_on_one_episode_is_that_episodes_outcome_and_a_lightning_error(
    evaluator: Evaluator, agent: AgentDefinition, request: pytest.FixtureRequest
) -> None:
    from lightning.adapters.evaluators.judge import TaskAdherenceJudge
    from lightning.domain.errors import LightningError

    episodes = [
        make_episode("fine", response="Churn in Q4 2025 was 12%."),
        make_episode("bad", tool="no_such"),
    ]
    if isinstance(evaluator, TaskAdherenceJudge):
        standin: JudgeStandIn = request.getfixturevalue("judge_standin")
        standin.verdicts.insert(
            0, ("no_such", {"score": "not a number", "reason": "?", "status": "completed"})
        )
    outcomes = evaluator.evaluate_many([(episode, agent) for episode in episodes])
    assert len(outcomes) == 2
    assert not isinstance(outcomes[0], Exception)
    if isinstance(outcomes[1], Exception):
        assert isinstance(outcomes[1], LightningError)
    else:
        assert outcomes[1].score == 0.0  # the rubric scores an unknown tool as failed

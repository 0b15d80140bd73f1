"""evaluate_model and the held-out request set."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.domain.episode import Action, Episode, Label, State
from lightning.domain.errors import InvalidInput, ProviderError
from lightning.domain.model import (
    EvalRequest,
    EvaluationSummary,
    GateRule,
    JudgeFigures,
    Rate,
    decide_promotion,
)
from lightning.ports.bundles import EvaluationPorts
from lightning.ports.tools import ToolRunner
from lightning.services.evaluation import (
    EvalSet,
    dataset_requests,
    evaluate_model,
    held_out_requests,
    requests_from_episodes,
    select_requests,
)
from tests.unit.promotion.conftest import AGENT, World


def requests(world: World, n: int = 20) -> list[EvalRequest]:
    seen: dict[str, EvalRequest] = {}
    for sample in world.samples:
        seen.setdefault(
            sample.query,
            EvalRequest(
                query=sample.query,
                expected_tool=sample.tool,
                expected_arguments=dict(sample.arguments),
                truth="ground_truth",
            ),
        )
    return list(seen.values())[:n]


def evaluate(
    world: World, model: str, reqs: list[EvalRequest], run_tool: ToolRunner | None = None
) -> EvaluationSummary:
    ports = EvaluationPorts(chat=world.chat, evaluator=world.evaluator, run_tool=run_tool)
    return evaluate_model(model=model, agent=world.agents.get(AGENT), eval_set=EvalSet(reqs), ports=ports)


def test_a_perfect_model_scores_full_marks_without_running_tools(world: World) -> None:
    summary = evaluate(world, "m", requests(world))
    assert summary.examples == 20
    assert summary.ground_truth.n == 20
    assert summary.ground_truth.tool_accuracy.value == 1.0
    assert summary.ground_truth.argument_exact_match.value == 1.0
    assert summary.error_rate.value == 0.0
    assert summary.judge.completeness.value is None  # no tool ran, so completeness is not claimed
    assert summary.details["tools_run"] is False
    # Without a result the rubric cannot call an answer complete: no reward reaches "excellent".
    assert 0.3 < summary.judge.avg_reward < 0.9
    assert summary.judge.evaluator.startswith("task_adherence@")


def test_wrong_tools_and_missing_calls_lower_the_figures(world: World) -> None:
    world.chat.wrong_every["m"] = 4
    world.chat.no_tool_every["m"] = 5
    summary = evaluate(world, "m", requests(world))
    # 20 requests: no tool call at 5,10,15,20 (4); wrong tool at 4,8,12,16 (4).
    assert summary.ground_truth.tool_accuracy.value == pytest.approx(12 / 20)
    assert summary.ground_truth.argument_exact_match.value == pytest.approx(12 / 20)
    assert summary.error_rate.value == pytest.approx(4 / 20)
    low, high = summary.ground_truth.tool_accuracy.low, summary.ground_truth.tool_accuracy.high
    assert low is not None
    assert high is not None
    assert low < 12 / 20 < high
    rows = summary.details["results"]
    assert rows[4]["error"] == "the model made no tool call"
    assert rows[4]["judge_reward"] == 0.0
    assert rows[3]["right_tool"] is False


def test_running_the_tools_lets_the_rubric_judge_completeness(world: World) -> None:
    agent = world.agents.get(AGENT)
    keys = {rule.tool: rule.result_keys for rule in agent.rubric.rules}

    def run_tool(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if tool == "sales_forecast":
            raise RuntimeError("forecast service down")
        return dict.fromkeys(keys[tool], 1)

    summary = evaluate(world, "m", requests(world), run_tool=run_tool)
    forecasts = sum(1 for r in requests(world) if r.expected_tool == "sales_forecast")
    assert forecasts > 0
    assert summary.details["tools_run"] is True
    assert summary.error_rate.value == pytest.approx(forecasts / 20)
    completeness = summary.judge.completeness.value
    assert completeness is not None
    assert 0.5 < completeness <= (20 - forecasts) / 20  # a failed tool is never complete
    assert summary.judge.avg_reward > evaluate(world, "m", requests(world)).judge.avg_reward


def test_requests_without_expectations_use_the_evaluator(world: World) -> None:
    reqs = [EvalRequest(query=r.query) for r in requests(world, 10)]
    world.chat.wrong_every["m"] = 2
    summary = evaluate(world, "m", reqs)
    assert summary.ground_truth.n == 0  # no known answers: nothing is claimed as ground truth
    assert summary.ground_truth.argument_exact_match.value is None
    assert summary.judge.tool_accuracy.n <= 10
    assert (summary.judge.tool_accuracy.value or 0) < 1.0


def test_all_calls_failing_is_an_error_not_a_score(world: World) -> None:
    world.chat.down.add("gone")
    with pytest.raises(ProviderError, match="all 5 requests failed"):
        evaluate(world, "gone", requests(world, 5))


def test_labeled_episodes_become_requests_with_known_answers() -> None:
    good = Episode(
        id="a",
        agent_id=AGENT,
        state=State(query="q1"),
        action=Action(tool="sales_report", arguments={"region": "west"}),
        reward=0.9,
        labeled=True,
    )
    bad = Episode(
        id="b",
        agent_id=AGENT,
        state=State(query="q2"),
        action=Action(tool="top_products"),
        reward=0.1,
        labeled=True,
        label=Label(source="auto", score=0.1, expected_tool="analyze_churn", tool_correct=False),
    )
    unknown = Episode(
        id="c",
        agent_id=AGENT,
        state=State(query="q3"),
        action=Action(tool="top_products"),
        reward=0.5,
        labeled=True,
    )
    corrected = Episode(
        id="d",
        agent_id=AGENT,
        state=State(query="q4"),
        action=Action(tool="top_products", arguments={"n": 3, "metric": "units"}),
    ).with_label(
        Label(
            source="human",
            score=0.1,
            expected_tool="sales_forecast",
            expected_arguments={"horizon_months": 6},
        )
    )
    out = requests_from_episodes([good, bad, unknown, corrected], source="recent", min_reward=0.7)
    assert (out[0].expected_tool, out[0].expected_arguments, out[0].truth) == (
        "sales_report",
        {"region": "west"},
        "judge",
    )
    assert (out[1].expected_tool, out[1].expected_arguments, out[1].truth) == ("analyze_churn", None, "judge")
    assert (out[2].expected_tool, out[2].expected_arguments, out[2].truth) == (None, None, None)
    assert (out[3].expected_tool, out[3].expected_arguments, out[3].truth) == (
        "sales_forecast",
        {"horizon_months": 6},
        "ground_truth",
    )
    assert [r.episode_id for r in out] == ["a", "b", "c", "d"]


def test_held_out_set_is_validation_plus_recent_unused(world: World) -> None:
    reqs = held_out_requests(
        agent_id=AGENT,
        episodes=world.episodes,
        datasets=world.datasets,
        dataset_name="autonomous-agent-v1",
        recent=5,
        min_reward=0.7,
    )
    assert [r.source for r in reqs] == ["validation"] * 10 + ["recent"] * 5
    manifest = world.datasets.get("autonomous-agent-v1")
    assert {r.episode_id for r in reqs[:10]} == set(manifest.validation_episode_ids)
    assert not {r.episode_id for r in reqs} & set(manifest.episode_ids)


def test_gate_rule_figures_judge_only() -> None:
    def summary(model: str, acc: float, reward: float, n: int = 10) -> EvaluationSummary:
        return EvaluationSummary(
            model=model,
            examples=n,
            judge=JudgeFigures(tool_accuracy=Rate.of(round(acc * n), n), avg_reward=reward, n=n),
        )

    rule = GateRule(tolerance=0.0)
    assert decide_promotion(summary("c", 0.9, 0.8), summary("b", 0.9, 0.8), rule=rule).promote
    loose = GateRule(tolerance=0.02)
    assert decide_promotion(summary("c", 0.9, 0.8, 100), summary("b", 0.91, 0.8, 100), rule=loose).promote
    refused = decide_promotion(summary("c", 0.85, 0.8, 100), summary("b", 0.9, 0.8, 100), rule=loose)
    assert not refused.promote
    assert "judge-estimated tool accuracy 0.850 < 0.900" in refused.reason
    assert refused.reason.startswith("judge-only gate")
    assert not decide_promotion(summary("c", 1.0, 0.7), summary("b", 0.9, 0.8), rule=loose).promote
    empty = decide_promotion(summary("c", 0.0, 0.0, 0), summary("b", 0.0, 0.0, 0), rule=loose)
    assert not empty.promote
    assert "no held-out requests" in empty.reason


def test_select_requests_sources_and_limits(world: World) -> None:
    common = {
        "agent_id": AGENT,
        "episodes": world.episodes,
        "datasets": world.datasets,
        "recent": 5,
        "min_reward": 0.7,
    }
    given = requests(world, 3)
    assert select_requests(queries=given, **common) == given
    from_dataset = select_requests(dataset_name="autonomous-agent-v1", limit=4, **common)
    assert [r.source for r in from_dataset] == ["dataset"] * 4
    held_out = select_requests(**common)
    assert [r.source for r in held_out] == ["validation"] * 10 + ["recent"] * 5
    with pytest.raises(InvalidInput, match="no held-out requests"):
        select_requests(queries=[], **common)


def test_a_dataset_without_validation_split_is_refused(world: World) -> None:
    manifest = world.datasets.get("autonomous-agent-v1").model_copy(
        update={"name": "no-validation", "validation_episode_ids": [], "content_sha256": "other"}
    )
    world.datasets.put(manifest)
    with pytest.raises(InvalidInput, match="no validation split"):
        dataset_requests(
            dataset_name="no-validation", episodes=world.episodes, datasets=world.datasets, min_reward=0.7
        )


def test_with_the_reference_agents_tools_answers_are_complete(world: World) -> None:
    from lightning.agent.tools import run_tool

    with_tools = evaluate(world, "m", requests(world), run_tool=lambda tool, args: run_tool(tool, args))
    without = evaluate(world, "m", requests(world))
    assert with_tools.details["tools_run"] is True
    assert with_tools.error_rate.value == 0.0
    assert (with_tools.judge.completeness.value or 0) > 0.5
    assert with_tools.judge.avg_reward > without.judge.avg_reward

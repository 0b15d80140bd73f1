"""decide_promotion: ground truth first, the judge only breaks ties, observed errors always count."""

from __future__ import annotations

from lightning.domain.model import (
    EvaluationSummary,
    GateRule,
    GroundTruthFigures,
    JudgeFigures,
    Rate,
    decide_promotion,
)


def summary(
    model: str,
    *,
    gt_tool: tuple[int, int] = (0, 0),
    gt_args: tuple[int, int] | None = None,
    judge_tool: float = 0.8,
    reward: float = 0.8,
    errors: tuple[int, int] = (0, 100),
) -> EvaluationSummary:
    gt_args = gt_args or gt_tool
    return EvaluationSummary(
        model=model,
        examples=100,
        ground_truth=GroundTruthFigures(
            n=gt_tool[1], tool_accuracy=Rate.of(*gt_tool), argument_exact_match=Rate.of(*gt_args)
        ),
        judge=JudgeFigures(tool_accuracy=Rate.of(round(judge_tool * 100), 100), avg_reward=reward, n=100),
        error_rate=Rate.of(*errors),
    )


RULE = GateRule(tolerance=0.02, min_golden=30)


def test_truly_better_on_ground_truth_passes_even_when_the_judge_prefers_the_baseline() -> None:
    # The case: 87.5 % vs 67.5 % on ground truth, average judge reward 0.02 lower.
    candidate = summary("tuned", gt_tool=(35, 40), reward=0.78, judge_tool=0.7)
    baseline = summary("base", gt_tool=(27, 40), reward=0.80, judge_tool=0.9)
    decision = decide_promotion(candidate, baseline, rule=RULE)
    assert decision.promote
    assert decision.ground_truth
    assert "better than base on ground truth" in decision.reason


def test_worse_on_ground_truth_is_refused_even_when_the_judge_loves_it() -> None:
    candidate = summary("poisoned", gt_tool=(25, 40), reward=0.99, judge_tool=1.0)
    baseline = summary("base", gt_tool=(30, 40), reward=0.7, judge_tool=0.7)
    decision = decide_promotion(candidate, baseline, rule=RULE)
    assert not decision.promote
    assert "worse than base on ground truth" in decision.reason


def test_wrong_arguments_on_ground_truth_are_refused() -> None:
    candidate = summary("c", gt_tool=(40, 40), gt_args=(20, 40))
    baseline = summary("b", gt_tool=(40, 40), gt_args=(30, 40))
    assert "argument exact match" in decide_promotion(candidate, baseline, rule=RULE).reason


def test_a_ground_truth_tie_is_broken_by_the_judge() -> None:
    tie = (30, 40)
    worse = decide_promotion(
        summary("c", gt_tool=tie, reward=0.6), summary("b", gt_tool=tie, reward=0.8), rule=RULE
    )
    assert not worse.promote
    assert worse.reason.startswith("ground truth ties")
    assert "judge finds it worse" in worse.reason
    same = decide_promotion(summary("c", gt_tool=tie), summary("b", gt_tool=tie), rule=RULE)
    assert same.promote


def test_without_enough_ground_truth_the_gate_says_it_is_judge_only() -> None:
    decision = decide_promotion(summary("c", gt_tool=(5, 10)), summary("b", gt_tool=(1, 10)), rule=RULE)
    assert decision.promote
    assert not decision.ground_truth
    assert decision.reason.startswith("judge-only gate")


def test_a_significantly_higher_error_rate_is_refused_whatever_else() -> None:
    # The case, at a size where the difference is real: 11.4 % vs 10.2 % is not, 20 % vs 5 % is.
    close = decide_promotion(
        summary("c", gt_tool=(35, 40), errors=(114, 1000)),
        summary("b", gt_tool=(30, 40), errors=(102, 1000)),
        rule=RULE,
    )
    assert close.promote
    far = decide_promotion(
        summary("c", gt_tool=(39, 40), errors=(20, 100)),
        summary("b", gt_tool=(30, 40), errors=(5, 100)),
        rule=RULE,
    )
    assert not far.promote
    assert "error rate (observed) is significantly worse" in far.reason


def test_figures_stored_before_provenance_read_as_judge_figures() -> None:
    old = EvaluationSummary.model_validate(
        {
            "model": "m",
            "examples": 10,
            "tool_accuracy": 0.9,
            "avg_reward": 0.8,
            "error_rate": 0.1,
            "evaluator": "r@1",
        }
    )
    assert old.ground_truth.n == 0
    assert old.judge.tool_accuracy.value == 0.9
    assert old.judge.avg_reward == 0.8
    assert old.error_rate.value == 0.1

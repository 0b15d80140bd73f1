"""The learner: training-file validation, hyperparameters, training, evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lightning.adapters.modelserver.trainer import (
    Example,
    TrainConfig,
    TrainingCancelled,
    TrainingFileError,
    parse_training_file,
    resolve_hyperparameters,
    train,
)
from tests.integration.model_server.data import agent_definition, example_line, jsonl, split_samples


@pytest.fixture(scope="module")
def examples() -> tuple[list[Example], list[Example]]:
    train_samples, valid_samples = split_samples(400, 200, seed=21)
    return parse_training_file(jsonl(train_samples), min_examples=10), parse_training_file(
        jsonl(valid_samples)
    )


def _lines(count: int, mutate: Any = None) -> bytes:
    agent = agent_definition()
    train_samples, _ = split_samples(count, 0)
    records = [example_line(sample, agent, index) for index, sample in enumerate(train_samples)]
    if mutate is not None:
        mutate(records)
    return ("\n".join(json.dumps(record) for record in records) + "\n").encode()


def test_a_valid_file_gives_one_example_per_line() -> None:
    parsed = parse_training_file(_lines(12), min_examples=10)
    assert len(parsed) == 12
    first = parsed[0]
    assert first.tool in {tool.name for tool in first.tools}
    assert first.system_prompt.startswith("You are an analytics agent")
    assert first.tokens > 100


def _break_arguments(records: list[dict[str, Any]]) -> None:
    records[3]["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{not json"


def _drop_tool_calls(records: list[dict[str, Any]]) -> None:
    records[4]["messages"][2] = {"role": "assistant", "content": "I would call a tool."}
    del records[4]["messages"][3:]


def _unknown_tool(records: list[dict[str, Any]]) -> None:
    records[0]["messages"][2]["tool_calls"][0]["function"]["name"] = "delete_everything"


def _bad_role(records: list[dict[str, Any]]) -> None:
    records[1]["messages"][1]["role"] = "customer"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_break_arguments, "Line 4: message 2: tool call arguments are not valid JSON"),
        (_drop_tool_calls, "Line 5: no assistant message with tool_calls"),
        (_unknown_tool, "Line 1: the assistant calls 'delete_everything'"),
        (_bad_role, "Line 2: message 1 has invalid role 'customer'"),
    ],
)
def test_invalid_examples_are_reported_with_their_line(mutate: Any, message: str) -> None:
    with pytest.raises(TrainingFileError, match=message):
        parse_training_file(_lines(12, mutate), min_examples=10)


def test_files_that_are_not_jsonl_or_too_small_are_refused() -> None:
    with pytest.raises(TrainingFileError, match="Line 2: not valid JSON"):
        parse_training_file(_lines(1) + b"not json\n")
    with pytest.raises(TrainingFileError, match="Line 1: 'messages' must be a non-empty list"):
        parse_training_file(b'{"messages": []}\n')
    with pytest.raises(TrainingFileError, match="has 5 example"):
        parse_training_file(_lines(5), min_examples=10)
    with pytest.raises(TrainingFileError, match="not UTF-8"):
        parse_training_file(b"\xff\xfe\x00bad")


def test_auto_hyperparameters_follow_the_service() -> None:
    assert resolve_hyperparameters({}, 20, 1) == TrainConfig(5, 1, 0.1, 1)  # tiny files get more epochs
    assert resolve_hyperparameters({}, 1000, 1).n_epochs == 3
    assert resolve_hyperparameters({}, 1000, 1).batch_size == 2
    assert resolve_hyperparameters({}, 20_000, 1).n_epochs == 1
    explicit = {"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.5}
    assert resolve_hyperparameters(explicit, 1000, 7) == TrainConfig(2, 8, 0.5, 7)


def test_training_beats_the_base_model_on_held_out_requests(
    examples: tuple[list[Example], list[Example]],
) -> None:
    training, validation = examples
    result = train(training, validation, TrainConfig(3, 4, 0.1, 0), base_model="local-base")
    evaluation = result.evaluation
    assert evaluation.split == "validation"
    assert evaluation.examples == len(validation)
    assert evaluation.tuned_tool_accuracy >= evaluation.base_tool_accuracy + 0.15
    assert evaluation.tuned_argument_exact_match >= evaluation.base_argument_exact_match + 0.15
    assert [report.epoch for report in result.epochs] == [1, 2, 3]
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    assert all(report.valid_loss is not None for report in result.epochs)
    assert len(result.steps) == 3 * 100
    assert result.trained_tokens == sum(example.tokens for example in training) * 3
    assert sorted(result.model.checkpoints) == [100, 200, 300]


def test_learned_arguments_fill_values_the_text_only_implies(
    examples: tuple[list[Example], list[Example]],
) -> None:
    training, validation = examples
    model = train(training, validation, TrainConfig(3, 4, 0.1, 0), base_model="local-base").model
    queries = [
        "How much will we sell over the next half year?",
        "How did the western region do last quarter?",
        "Are we losing customers?",
    ]
    predictions = model.predict_batch(queries)
    assert [(p.tool, p.arguments) for p in predictions if p] == [
        ("sales_forecast", {"horizon_months": 6}),
        ("sales_report", {"region": "west", "period": "last quarter"}),
        ("analyze_churn", {"period": "last quarter"}),
    ]


def test_hyperparameters_change_the_training(examples: tuple[list[Example], list[Example]]) -> None:
    training, validation = examples
    slow = train(training, validation, TrainConfig(1, 16, 0.01, 0), base_model="local-base")
    fast = train(training, validation, TrainConfig(1, 16, 1.0, 0), base_model="local-base")
    assert len(slow.steps) == len(fast.steps) == 25
    assert fast.epochs[-1].train_loss < slow.epochs[-1].train_loss


def test_predictions_keep_to_the_tools_of_the_request(examples: tuple[list[Example], list[Example]]) -> None:
    training, validation = examples
    model = train(training, validation, TrainConfig(2, 8, 0.1, 0), base_model="local-base").model
    [restricted] = model.predict_batch(
        ["Analyze customer churn for Q4 2025"], allowed=["sales_report", "top_products"]
    )
    assert restricted is not None
    assert restricted.tool in {"sales_report", "top_products"}
    assert model.predict_batch(["anything"], allowed=["unknown_tool"]) == [None]
    [forced] = model.predict_batch(["Analyze customer churn for Q4 2025"], forced="sales_forecast")
    assert forced is not None
    assert forced.tool == "sales_forecast"


def test_should_stop_cancels_training(examples: tuple[list[Example], list[Example]]) -> None:
    training, _ = examples
    with pytest.raises(TrainingCancelled):
        train(training, [], TrainConfig(3, 4, 0.1, 0), base_model="local-base", should_stop=lambda: True)


def test_without_a_validation_file_the_evaluation_uses_the_training_split(
    examples: tuple[list[Example], list[Example]],
) -> None:
    training, _ = examples
    result = train(training[:50], [], TrainConfig(2, 4, 0.1, 0), base_model="local-base")
    assert result.evaluation.split == "train"
    assert result.epochs[0].valid_loss is None


def test_the_fast_featurizer_path_matches_scikit_learn(examples: tuple[list[Example], list[Example]]) -> None:
    from lightning.adapters.modelserver.trainer import Featurizer

    training, validation = examples
    featurizer = Featurizer().fit([example.query for example in training])
    queries = [example.query for example in validation[:40]] + [
        "",
        "zzzz unseen words only",
        "Q4 2025 Q4 2025 churn",
    ]
    slow = featurizer.transform(queries)  # more than 16 texts: scikit-learn's own transform
    for row, query in enumerate(queries):
        fast = featurizer.transform([query])
        assert abs(fast - slow[row]).max() < 1e-6
        assert sorted(fast.indices.tolist()) == sorted(slow[row].indices.tolist())


def test_examples_without_tools_still_learn_arguments() -> None:
    train_samples, _ = split_samples(200, 0, seed=4)
    lines = []
    for sample in train_samples:
        call = {
            "type": "function",
            "function": {"name": sample.tool, "arguments": json.dumps(sample.arguments)},
        }
        messages = [{"role": "user", "content": sample.query}, {"role": "assistant", "tool_calls": [call]}]
        lines.append(json.dumps({"messages": messages}))
    examples = parse_training_file("\n".join(lines).encode(), min_examples=10)
    model = train(examples, [], TrainConfig(3, 2, 0.1, 0), base_model="local-base").model
    assert model.tools["sales_forecast"].properties == {"horizon_months": {"type": "integer"}}
    [prediction] = model.predict_batch(["Forecast sales for the next 9 months"])
    assert prediction is not None
    assert (prediction.tool, prediction.arguments) == ("sales_forecast", {"horizon_months": 9})


def test_the_same_seed_trains_the_same_model(examples: tuple[list[Example], list[Example]]) -> None:
    import numpy as np

    training, validation = examples
    first = train(training[:120], validation, TrainConfig(2, 4, 0.1, 9), base_model="local-base")
    second = train(training[:120], validation, TrainConfig(2, 4, 0.1, 9), base_model="local-base")
    other = train(training[:120], validation, TrainConfig(2, 4, 0.1, 10), base_model="local-base")
    assert np.array_equal(first.model.selector.weights, second.model.selector.weights)
    assert [step.train_loss for step in first.steps] == [step.train_loss for step in second.steps]
    assert [step.train_loss for step in first.steps] != [step.train_loss for step in other.steps]

"""The tuned model fine-tunes local-base rather than replacing it: it starts from base's choices,
keeps up with base under other tool descriptions, and leaves requests with unseen tools to base."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.adapters.modelserver.text import ToolDef
from lightning.adapters.modelserver.trainer import (
    Example,
    TrainConfig,
    TunedModel,
    evaluate,
    parse_training_file,
    resolve_hyperparameters,
    train,
)
from lightning.adapters.modelserver.zeroshot import ZeroShotModel
from lightning.agent.heldout import heldout_samples
from lightning.agent.queries import QuerySample
from tests.integration.model_server.data import agent_definition, jsonl, split_samples
from tests.integration.model_server.variants import UNSEEN_NAMES, rephrased_tools, unseen_tools

AGENT = agent_definition()
OWN = [ToolDef.from_openai(tool) for tool in AGENT.openai_tools()]
BASE = ZeroShotModel()


def _examples(samples: list[QuerySample]) -> list[Example]:
    return parse_training_file(jsonl(samples, AGENT), min_examples=1)


def _tune_like_the_loop(candidates: int, seed: int) -> tuple[TunedModel, list[QuerySample]]:
    """Tuned the way the loop first tunes: only on requests base already answered with the right tool."""
    pool, validation = split_samples(candidates, 400, seed=seed)
    kept = [
        sample
        for sample in pool
        if BASE.predict(sample.query, OWN, system_prompt=AGENT.system_prompt).tool == sample.tool
    ]
    examples = _examples(kept)
    model = train(examples, [], resolve_hyperparameters({}, len(examples), 3), base_model="local-base").model
    return model, validation


@pytest.fixture(scope="module")
def loop_like() -> tuple[TunedModel, list[QuerySample]]:
    return _tune_like_the_loop(1000, 31)  # ~600 examples


@pytest.fixture(scope="module")
def small_loop_like() -> list[tuple[TunedModel, list[QuerySample]]]:
    # ~120 examples each: a model that replaced base would fall ~5 points below it here.
    return [_tune_like_the_loop(200, seed) for seed in (41, 42)]


def _accuracy(
    model: TunedModel,
    samples: list[QuerySample],
    tools: list[ToolDef],
    prompt: str,
    rename: dict[str, str] | None = None,
) -> tuple[float, float]:
    """Ground-truth tool accuracy of base and of the tuned model as the server answers (None → base)."""
    tuned = model.predict_batch(
        [sample.query for sample in samples],
        request_tools={tool.name: tool for tool in tools},
        system_prompt=prompt,
    )
    base_right = tuned_right = 0
    for sample, prediction in zip(samples, tuned, strict=True):
        truth = rename[sample.tool] if rename else sample.tool
        base = BASE.predict(sample.query, tools, system_prompt=prompt)
        base_right += base.tool == truth
        tuned_right += (prediction or base).tool == truth
    return base_right / len(samples), tuned_right / len(samples)


def test_before_learning_anything_the_tuned_model_chooses_what_base_chooses() -> None:
    samples, held_out = split_samples(300, 200, seed=32)
    config = TrainConfig(n_epochs=1, batch_size=16, learning_rate_multiplier=1e-6, seed=0)
    model = train(_examples(samples), [], config, base_model="local-base").model
    queries = [sample.query for sample in held_out]
    tuned = model.predict_batch(
        queries, request_tools={t.name: t for t in OWN}, system_prompt=AGENT.system_prompt
    )
    agreeing = matched = 0
    for query, prediction in zip(queries, tuned, strict=True):
        base = BASE.predict(query, OWN, system_prompt=AGENT.system_prompt)
        if base.tool is not None:  # base names a tool when the request shares a word with one
            matched += 1
            agreeing += prediction is not None and prediction.tool == base.tool
    assert matched >= 150
    assert agreeing / matched >= 0.97


def test_fine_tuning_still_beats_base_with_the_training_tools(
    loop_like: tuple[TunedModel, list[QuerySample]],
) -> None:
    model, validation = loop_like
    base, tuned = _accuracy(model, validation, OWN, AGENT.system_prompt)
    assert tuned >= base + 0.15, (base, tuned)


@pytest.mark.parametrize("queries", ["generated", "heldout"])
def test_with_other_descriptions_and_no_system_prompt_it_keeps_up_with_base(
    small_loop_like: list[tuple[TunedModel, list[QuerySample]]], queries: str
) -> None:
    other = [ToolDef.from_openai(tool) for tool in rephrased_tools(AGENT)]
    base_total = tuned_total = 0.0
    for model, validation in small_loop_like:
        base, tuned = _accuracy(model, validation if queries == "generated" else heldout_samples(), other, "")
        base_total += base
        tuned_total += tuned
    base, tuned = base_total / len(small_loop_like), tuned_total / len(small_loop_like)
    assert base >= 0.75  # the descriptions are good ones: base does well with them
    assert tuned >= base - 0.03, (base, tuned)


def test_a_request_offering_a_tool_never_seen_in_training_is_left_to_base(
    loop_like: tuple[TunedModel, list[QuerySample]],
) -> None:
    model, validation = loop_like
    queries = [sample.query for sample in validation[:20]]
    weather = ToolDef(name="get_weather", description="Weather for a city", parameters={"type": "object"})
    with_new_tool = {tool.name: tool for tool in [*OWN, weather]}
    assert model.predict_batch(queries, request_tools=with_new_tool) == [None] * len(queries)
    assert model.predict_batch(queries, allowed=[*with_new_tool]) == [None] * len(queries)
    renamed = [ToolDef.from_openai(tool) for tool in unseen_tools(AGENT)]
    base, tuned = _accuracy(model, validation, renamed, "", rename=UNSEEN_NAMES)
    assert tuned == base
    known_subset = model.predict_batch(queries, request_tools={tool.name: tool for tool in OWN[:2]})
    assert all(p is not None and p.tool in {OWN[0].name, OWN[1].name} for p in known_subset)


def test_the_job_evaluation_counts_an_unseen_tool_as_base_answering(
    loop_like: tuple[TunedModel, list[QuerySample]],
) -> None:
    model, validation = loop_like
    renamed: list[Any] = unseen_tools(AGENT)
    lines = []
    for sample in validation[:60]:
        example = _examples([sample])[0]
        lines.append(
            Example(
                query=example.query,
                tool=UNSEEN_NAMES[example.tool],
                arguments=example.arguments,
                tools=tuple(ToolDef.from_openai(tool) for tool in renamed),
                system_prompt="",
                tokens=example.tokens,
            )
        )
    report = evaluate(model, lines, split="validation")
    assert report.tuned_tool_accuracy == report.base_tool_accuracy
    assert report.tuned_argument_exact_match == report.base_argument_exact_match

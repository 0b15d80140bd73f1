"""The workshop's base-model names (gpt-4o-mini, …) are local-base on this machine, and say so."""

from __future__ import annotations

import time
from typing import Any

import pytest
from openai import OpenAI

from lightning.adapters.modelserver.catalog import BASE_ALIASES
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.domain.training import Hyperparameters
from tests.integration.model_server.conftest import upload, wait_for_job
from tests.integration.model_server.data import agent_definition, jsonl, split_samples

AGENT = agent_definition()
TOOLS: list[Any] = AGENT.openai_tools()


def test_the_model_list_names_each_alias_and_who_serves_it(client: OpenAI) -> None:
    listed = {model.id: model for model in client.models.list()}
    assert set(BASE_ALIASES) == {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4.1-mini"}
    for alias in BASE_ALIASES:
        assert listed[alias].model_extra == {"served_by": "local-base"}
        assert client.models.retrieve(alias).model_extra == {"served_by": "local-base"}
    assert not listed["local-base"].model_extra


@pytest.mark.parametrize("alias", BASE_ALIASES)
def test_chat_with_an_alias_answers_as_local_base(client: OpenAI, alias: str) -> None:
    for query in ("Analyze customer churn for Q4 2025", "Top 5 products by margin", "hello there"):
        messages: list[Any] = [
            {"role": "system", "content": AGENT.system_prompt},
            {"role": "user", "content": query},
        ]
        base = client.chat.completions.create(model="local-base", messages=messages, tools=TOOLS)
        aliased = client.chat.completions.create(model=alias, messages=messages, tools=TOOLS)
        assert aliased.model == "local-base"
        base_calls = [
            (c.function.name, c.function.arguments) for c in base.choices[0].message.tool_calls or []
        ]
        alias_calls = [
            (c.function.name, c.function.arguments) for c in aliased.choices[0].message.tool_calls or []
        ]
        assert alias_calls == base_calls
        assert aliased.choices[0].message.content == base.choices[0].message.content


def test_a_job_on_an_alias_keeps_the_name_asked_for_and_says_who_serves_it(client: OpenAI) -> None:
    created = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18",
        training_file=upload(client, jsonl(split_samples(40, 0, seed=17)[0])),
        suffix="autonomous-agent",
        seed=3,
    )
    assert created.model == "gpt-4o-mini-2024-07-18"
    assert created.model_extra is not None
    assert created.model_extra["served_by"] == "local-base"
    job, _ = wait_for_job(client, created.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model is not None
    assert job.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:autonomous-agent:")
    messages = [event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert (
        "gpt-4o-mini-2024-07-18 is served by local-base on this machine; the fine-tuned model will be "
        f"named {job.fine_tuned_model}"
    ) in messages
    reply = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=[{"role": "user", "content": "Which customers are likely to leave us?"}],
        tools=TOOLS,
    )
    assert reply.model == job.fine_tuned_model
    assert reply.choices[0].message.tool_calls
    assert job.fine_tuned_model in {model.id for model in client.models.list()}


def test_the_projects_provider_trains_gpt_4o_mini_locally(model_server: Any, tmp_path: Any) -> None:
    """start-training --base-model gpt-4o-mini, as the workshop types it, through the project's adapter."""
    provider = OpenAIFineTuneProvider(
        OpenAI(base_url=model_server.base_url, api_key="local-model-server", max_retries=0),
        name="local",
        file_poll_interval=0.01,
    )
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(split_samples(30, 0, seed=23)[0]))
    job = provider.create_job(
        base_model="gpt-4o-mini",
        training_file=provider.upload_file(path),
        validation_file=None,
        hyperparameters=Hyperparameters(n_epochs=2),
        suffix="autonomous-agent",
        seed=5,
        idempotency_key="workshop-alias",
    )
    assert job.model == "gpt-4o-mini"
    deadline = time.monotonic() + 120
    while (job := provider.get_job(job.job_id)).status not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, job.status
        time.sleep(0.05)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model is not None
    assert job.fine_tuned_model.startswith("ft:gpt-4o-mini:autonomous-agent:")
    assert any("gpt-4o-mini is served by local-base on this machine" in event.message for event in job.events)

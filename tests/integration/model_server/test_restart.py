"""Files, jobs and models survive a server restart; unfinished jobs resume."""

from __future__ import annotations

import json
from pathlib import Path

from lightning.adapters.modelserver.jobs import create_job_record
from lightning.adapters.modelserver.server import start_server
from lightning.adapters.modelserver.store import Store
from tests.integration.model_server.conftest import client_for, upload, wait_for_job
from tests.integration.model_server.data import agent_definition, jsonl, split_samples

QUERY = [{"role": "user", "content": "How much will we sell over the next half year?"}]


def test_a_restarted_server_serves_the_same_models_jobs_and_files(tmp_path: Path) -> None:
    tools = agent_definition().openai_tools()
    with start_server(data_dir=tmp_path) as first:
        client = client_for(first)
        training_file = upload(client, jsonl(split_samples(200, 0, seed=3)[0]))
        job, _ = wait_for_job(
            client,
            client.fine_tuning.jobs.create(
                model="local-base", training_file=training_file, suffix="agent"
            ).id,
        )
        assert job.status == "succeeded"
        before = client.chat.completions.create(model=job.fine_tuned_model, messages=QUERY, tools=tools)  # type: ignore[arg-type]
        events_before = [event.id for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]

    with start_server(data_dir=tmp_path) as second:
        client = client_for(second)
        assert job.fine_tuned_model in [model.id for model in client.models.list()]
        assert client.fine_tuning.jobs.retrieve(job.id) == job
        assert [event.id for event in client.fine_tuning.jobs.list_events(job.id, limit=100)] == events_before
        assert client.files.retrieve(training_file).id == training_file
        after = client.chat.completions.create(model=job.fine_tuned_model, messages=QUERY, tools=tools)  # type: ignore[arg-type]
        before_call = before.choices[0].message.tool_calls[0].function  # type: ignore[index]
        after_call = after.choices[0].message.tool_calls[0].function  # type: ignore[index]
        assert (after_call.name, json.loads(after_call.arguments)) == (
            before_call.name,
            json.loads(before_call.arguments),
        )
        assert client.models.delete(job.fine_tuned_model).deleted  # type: ignore[arg-type]

    with start_server(data_dir=tmp_path) as third:
        assert job.fine_tuned_model not in [model.id for model in client_for(third).models.list()]


def test_a_job_left_unfinished_resumes_when_the_server_starts(tmp_path: Path) -> None:
    store = Store(tmp_path)
    training = store.add_file_bytes(
        filename="t.jsonl", purpose="fine-tune", data=jsonl(split_samples(50, 0)[0])
    )
    record = create_job_record(
        model="local-base",
        training_file=training["id"],
        validation_file=None,
        hyperparameters={},
        method_type="supervised",
        suffix=None,
        seed=1,
        metadata=None,
    )
    record["status"] = "running"  # as a server killed mid-training leaves it
    store.add_job(record)
    with start_server(data_dir=tmp_path) as server:
        client = client_for(server)
        job, _ = wait_for_job(client, record["id"])
        assert job.status == "succeeded"
        assert job.fine_tuned_model
        assert job.fine_tuned_model.startswith("ft:local-base::")
        messages = [event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert "Job resumed after a server restart" in messages

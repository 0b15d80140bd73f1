"""/v1/fine_tuning/jobs through the openai SDK: a real training run, its events, checkpoints, results, errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from tests.integration.model_server.conftest import upload, wait_for_job
from tests.integration.model_server.data import agent_definition, example_line, jsonl, split_samples


@pytest.fixture(scope="module")
def trained(model_server: Any) -> dict[str, Any]:
    """One supervised job with a validation file, run to the end (shared by the read-only tests)."""
    from tests.integration.model_server.conftest import client_for

    client = client_for(model_server)
    train_samples, valid_samples = split_samples(300, 150, seed=5)
    training_file = upload(client, jsonl(train_samples))
    validation_file = upload(client, jsonl(valid_samples), "valid.jsonl")
    created = client.fine_tuning.jobs.create(
        model="local-base",
        training_file=training_file,
        validation_file=validation_file,
        suffix="Autonomous Agent",
        seed=42,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 4}}},
        metadata={"idempotency_key": "run-123"},
    )
    job, statuses = wait_for_job(client, created.id)
    return {"created": created, "job": job, "statuses": statuses, "training_file": training_file}


def test_a_job_goes_through_the_service_states_to_a_named_model(trained: dict[str, Any]) -> None:
    created: FineTuningJob = trained["created"]
    job: FineTuningJob = trained["job"]
    FineTuningJob.model_validate(created.to_dict())
    FineTuningJob.model_validate(job.to_dict())
    assert created.status == "validating_files"
    assert created.fine_tuned_model is None
    assert created.finished_at is None
    assert created.hyperparameters.n_epochs == 3
    assert created.hyperparameters.learning_rate_multiplier == "auto"
    order = ["validating_files", "queued", "running", "succeeded"]
    assert [order.index(status) for status in trained["statuses"]] == sorted(
        order.index(s) for s in trained["statuses"]
    )
    assert job.status == "succeeded", job.error
    assert job.error is None
    assert job.fine_tuned_model is not None
    prefix, base, suffix, short_id = job.fine_tuned_model.split(":")
    assert (prefix, base, suffix) == ("ft", "local-base", "autonomous-agent")
    assert len(short_id) == 8
    assert job.hyperparameters.model_dump() == {
        "batch_size": 4,
        "learning_rate_multiplier": 0.1,
        "n_epochs": 3,
    }
    assert job.method is not None
    assert job.method.type == "supervised"
    assert job.trained_tokens
    assert job.trained_tokens > 300 * 3 * 100
    assert job.finished_at is not None
    assert job.finished_at >= job.created_at
    assert job.metadata == {"idempotency_key": "run-123"}
    assert job.seed == 42


def test_events_report_each_epoch_and_the_evaluation(client: OpenAI, trained: dict[str, Any]) -> None:
    job: FineTuningJob = trained["job"]
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    for event in events:
        FineTuningJobEvent.model_validate(event.to_dict())
    messages = [event.message for event in reversed(events)]  # the API lists newest first
    assert messages[0] == f"Created fine-tuning job: {job.id}"
    assert messages[-1] == "The job has successfully completed"
    steps = [message for message in messages if message.startswith("Step ")]
    assert steps[0].startswith("Step 75/225: training loss=")
    assert len(steps) == 3
    assert all("validation loss=" in message for message in steps)
    metrics = [event for event in events if event.type == "metrics" and event.message.startswith("Step")]
    assert {event.data["epoch"] for event in metrics} == {1, 2, 3}  # type: ignore[index]
    evaluation = next(
        event for event in events if event.message.startswith("Evaluation on the validation split")
    )
    assert evaluation.data == job.evaluation  # type: ignore[attr-defined]
    assert f"New fine-tuned model created: {job.fine_tuned_model}" in messages
    page = client.fine_tuning.jobs.list_events(job.id, limit=2)
    assert page.has_more
    assert len(page.data) == 2
    after = client.fine_tuning.jobs.list_events(job.id, limit=2, after=page.data[-1].id)
    assert after.data[0].id == events[2].id


def test_the_tuned_model_beats_the_base_on_the_validation_split(trained: dict[str, Any]) -> None:
    evaluation = trained["job"].evaluation
    assert evaluation["split"] == "validation"
    assert evaluation["examples"] == 150
    assert evaluation["tuned_tool_accuracy"] >= evaluation["base_tool_accuracy"] + 0.15
    assert evaluation["tuned_argument_exact_match"] >= evaluation["base_argument_exact_match"] + 0.15


def test_checkpoints_are_servable_models(client: OpenAI, trained: dict[str, Any]) -> None:
    job: FineTuningJob = trained["job"]
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    for checkpoint in checkpoints:
        FineTuningJobCheckpoint.model_validate(checkpoint.to_dict())
    assert [checkpoint.step_number for checkpoint in checkpoints] == [225, 150, 75]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-225"
    assert checkpoints[0].metrics.valid_loss is not None
    assert checkpoints[-1].metrics.train_loss > checkpoints[0].metrics.train_loss  # type: ignore[operator]
    reply = client.chat.completions.create(
        model=checkpoints[-1].fine_tuned_model_checkpoint,
        messages=[{"role": "user", "content": "Analyze customer churn for Q4 2025"}],
        tools=agent_definition().openai_tools(),  # type: ignore[arg-type]
    )
    assert reply.choices[0].finish_reason == "tool_calls"


def test_result_files_hold_step_metrics_and_the_evaluation(client: OpenAI, trained: dict[str, Any]) -> None:
    job: FineTuningJob = trained["job"]
    metrics_id, evaluation_id = job.result_files
    metrics_file = client.files.retrieve(metrics_id)
    assert (metrics_file.filename, metrics_file.purpose) == ("step_metrics.csv", "fine-tune-results")
    rows = list(csv.DictReader(io.StringIO(client.files.content(metrics_id).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
    ]
    assert [int(row["step"]) for row in rows] == list(range(1, 226))
    assert [row["step"] for row in rows if row["valid_loss"]] == ["75", "150", "225"]
    assert (
        json.loads(client.files.content(evaluation_id).text)["tuned_tool_accuracy"]
        == job.evaluation["tuned_tool_accuracy"]
    )  # type: ignore[attr-defined]


def test_jobs_list_pages_newest_first_and_filters_on_metadata(
    client: OpenAI, trained: dict[str, Any]
) -> None:
    job: FineTuningJob = trained["job"]
    second = client.fine_tuning.jobs.create(
        model="local-base", training_file=trained["training_file"], metadata={"idempotency_key": "run-456"}
    )
    client.fine_tuning.jobs.cancel(second.id)
    first_page = client.fine_tuning.jobs.list(limit=1)
    assert first_page.data[0].id == second.id
    assert first_page.has_more
    everything = [item.id for item in client.fine_tuning.jobs.list(limit=100)]
    assert everything.index(second.id) < everything.index(job.id)
    following = client.fine_tuning.jobs.list(limit=1, after=second.id)
    assert following.data[0].id == everything[everything.index(second.id) + 1]
    assert [item.id for item in client.fine_tuning.jobs.list(limit=2)] == everything  # the SDK pages on
    matching = client.fine_tuning.jobs.list(metadata={"idempotency_key": "run-123"})
    assert [item.id for item in matching.data] == [job.id]


def test_legacy_hyperparameters_and_cancel(client: OpenAI, trained: dict[str, Any]) -> None:
    created = client.fine_tuning.jobs.create(
        model="local-base",
        training_file=trained["training_file"],
        hyperparameters={"n_epochs": 2, "learning_rate_multiplier": 0.5},
    )
    assert created.hyperparameters.n_epochs == 2
    cancelled = client.fine_tuning.jobs.cancel(created.id)
    assert cancelled.status == "cancelled"
    job, _ = wait_for_job(client, created.id)
    assert job.status == "cancelled"
    assert job.fine_tuned_model is None
    with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
        client.fine_tuning.jobs.cancel(created.id)


def _file_with(records: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(record) for record in records) + "\n").encode()


def _examples(count: int) -> list[dict[str, Any]]:
    agent = agent_definition()
    return [example_line(sample, agent, index) for index, sample in enumerate(split_samples(count, 0)[0])]


def _no_tool_calls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records[2]["messages"] = [*records[2]["messages"][:2], {"role": "assistant", "content": "Sure."}]
    return records


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_file_with(_examples(5)), "Training file has 5 example(s), but must have at least 10 examples"),
        (b"this is not json\n" * 12, "Invalid file format. Line 1: not valid JSON"),
        (
            _file_with(_no_tool_calls(_examples(12))),
            "Invalid file format. Line 3: no assistant message with tool_calls",
        ),
    ],
)
def test_invalid_training_files_fail_the_job_with_a_clear_error(
    client: OpenAI, data: bytes, message: str
) -> None:
    created = client.fine_tuning.jobs.create(model="local-base", training_file=upload(client, data))
    job, _ = wait_for_job(client, created.id)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_training_file", "training_file")
    assert job.error.message.startswith(message)
    assert job.fine_tuned_model is None
    errors = [event for event in client.fine_tuning.jobs.list_events(job.id) if event.level == "error"]
    assert errors
    assert errors[0].message == job.error.message


def test_an_invalid_validation_file_fails_the_job(client: OpenAI, trained: dict[str, Any]) -> None:
    created = client.fine_tuning.jobs.create(
        model="local-base", training_file=trained["training_file"], validation_file=upload(client, b"{]\n")
    )
    job, _ = wait_for_job(client, created.id)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error.code, job.error.param) == (
        "invalid_validation_file",
        "validation_file",
    )


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "gpt-4o", "training_file": "TRAIN"}, "model", "not available for fine-tuning"),
        ({"model": "local-base", "training_file": "file-nope"}, "training_file", "does not exist"),
        ({"model": "local-base"}, "training_file", "Missing required parameter: 'training_file'"),
        (
            {"model": "local-base", "training_file": "TRAIN", "method": {"type": "dpo"}},
            "method.type",
            "'dpo' is not supported",
        ),
        (
            {"model": "local-base", "training_file": "TRAIN", "hyperparameters": {"n_epochs": 0}},
            "hyperparameters.n_epochs",
            "between 1 and 50",
        ),
        (
            {"model": "local-base", "training_file": "TRAIN", "hyperparameters": {"n_epochs": "many"}},
            "hyperparameters.n_epochs",
            "Invalid value",
        ),
        (
            {"model": "local-base", "training_file": "TRAIN", "hyperparameters": {"epochs": 3}},
            "hyperparameters.epochs",
            "Unknown parameter: 'hyperparameters.epochs'.",
        ),
        ({"model": "local-base", "training_file": "TRAIN", "suffix": "x" * 65}, "suffix", "Invalid value"),
        ({"model": "local-base", "training_file": "TRAIN", "metadata": {"k": "v" * 513}}, "metadata", "512"),
    ],
)
def test_bad_job_requests_are_400(
    model_server: Any, trained: dict[str, Any], body: dict[str, Any], param: str, fragment: str
) -> None:
    if body.get("training_file") == "TRAIN":
        body = {**body, "training_file": trained["training_file"]}
    response = httpx.post(f"{model_server.base_url}/fine_tuning/jobs", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"


def test_unknown_job_ids_are_404(client: OpenAI) -> None:
    calls = (
        client.fine_tuning.jobs.retrieve,
        client.fine_tuning.jobs.cancel,
        client.fine_tuning.jobs.list_events,
        client.fine_tuning.jobs.checkpoints.list,
    )
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call("ftjob-nope")
        assert caught.value.body["message"] == "Fine-tuning job ftjob-nope not found."  # type: ignore[index]


def test_malformed_json_and_bad_limits_are_400(model_server: Any) -> None:
    response = httpx.post(
        f"{model_server.base_url}/fine_tuning/jobs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]
    response = httpx.get(f"{model_server.base_url}/fine_tuning/jobs", params={"limit": "0"})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "limit")


def _wait_for_status(client: OpenAI, job_id: str, status: str, timeout: float = 60.0) -> FineTuningJob:
    import time

    deadline = time.monotonic() + timeout
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status != status:
        assert job.status not in {"succeeded", "failed", "cancelled"}, (
            f"{job_id} ended {job.status}, wanted {status}"
        )
        assert time.monotonic() < deadline, f"{job_id} still {job.status}, wanted {status}"
        time.sleep(0.01)
    return job


def test_a_second_job_waits_queued_and_a_running_job_can_be_cancelled(client: OpenAI) -> None:
    models_before = {model.id for model in client.models.list()}
    long_file = upload(client, jsonl(split_samples(1000, 0, seed=8)[0]))
    long_job = client.fine_tuning.jobs.create(
        model="local-base", training_file=long_file, hyperparameters={"n_epochs": 50, "batch_size": 1}
    )
    _wait_for_status(client, long_job.id, "running")
    short_job = client.fine_tuning.jobs.create(
        model="local-base", training_file=upload(client, jsonl(split_samples(20, 0)[0]))
    )
    _wait_for_status(client, short_job.id, "queued")  # validated, waiting for the trainer
    assert client.fine_tuning.jobs.retrieve(long_job.id).status == "running"

    assert client.fine_tuning.jobs.cancel(long_job.id).status == "cancelled"
    short, _ = wait_for_job(client, short_job.id)
    assert short.status == "succeeded"
    cancelled = client.fine_tuning.jobs.retrieve(long_job.id)
    assert cancelled.status == "cancelled"
    assert cancelled.fine_tuned_model is None
    assert cancelled.finished_at is not None
    assert (
        client.fine_tuning.jobs.list_events(long_job.id, limit=1).data[0].message
        == "Fine-tuning job cancelled"
    )
    assert {model.id for model in client.models.list()} - models_before == {short.fine_tuned_model}

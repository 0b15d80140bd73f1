"""The training verbs end to end: the CLI (as a user runs it) → services → SQLite + local blobs → the
``openai`` SDK over HTTP → the local fine-tuning stand-in. Output blocks are the workshop's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.cli import main
from lightning.config import get_settings
from tests.integration.training.conftest import store_dataset
from tests.integration.training.ft_server import Fault, FineTuneServer, Step, happy_plan

START = [
    "start-training",
    "--agent-id",
    "autonomous-agent",
    "--dataset-name",
    "autonomous-agent-v1",
    "--base-model",
    "gpt-4o-mini",
    "--training-epochs",
    "3",
    "--learning-rate-multiplier",
    "0.1",
]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> Iterator[FineTuneServer]:
    del clean_env
    server = FineTuneServer().start()
    server.file_polls_before_processed = 0  # the CLI waits for real; no need to here
    monkeypatch.setenv("LIGHTNING_MODEL_SERVER", server.base_url)
    store_dataset(get_settings())
    yield server
    server.stop()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_start_then_status_prints_the_workshop_blocks(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, *START)
    assert code == 0, err
    job_id = next(iter(server.jobs))
    assert out.splitlines()[0] == f"Job ID: {job_id}"

    for _ in range(3):  # validating_files, queued, running at step 9
        run_cli(capsys, "get-training-status", "--job-id", job_id)
    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id)
    assert code == 0
    assert out == (
        f"Job ID: {job_id}\n"
        "Status: running\n"
        "Progress: 60%\n"
        "Current Epoch: 2/3\n"
        "Training Loss: 0.412\n"
        "Validation Loss: 0.438\n"
        "Estimated Time Remaining: 2 minutes\n"
    )

    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id)
    assert out == (
        f"Job ID: {job_id}\n"
        "Status: succeeded\n"
        f"Fine-tuned Model: ft:gpt-4o-mini:autonomous-agent:{job_id[-6:]}\n"
        "Training Loss: 0.318\n"
        "Validation Loss: 0.342\n"
        "Total Tokens: 45,230\n"
        "Duration: 23 minutes\n"
    )

    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id, "--json")
    status = json.loads(out)
    assert status["status"] == "succeeded"
    assert status["trained_tokens"] == 45230
    assert status["terminal"] is True


def test_repeat_start_says_so_and_returns_the_same_job(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, *START)
    code, out, err = run_cli(capsys, *START)
    assert code == 0
    assert "already exists" in err
    assert "no new job was started" in err
    assert out.splitlines()[0] == f"Job ID: {next(iter(server.jobs))}"
    assert server.job_creations() == 1

    code, out, _ = run_cli(capsys, *START, "--json")
    assert json.loads(out)["created"] is False


def test_watch_refreshes_until_terminal(server: FineTuneServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, *START)
    job_id = next(iter(server.jobs))
    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id, "--watch", "--interval", "0.1")
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 5
    assert blocks[0].splitlines()[1] == "Status: validating_files"
    assert blocks[-1].splitlines()[1] == "Status: succeeded"

    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id, "--watch", "--json")
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["succeeded"]


def test_failed_job_shows_the_error_and_watch_exits_non_zero(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.plan = [
        Step(
            "failed",
            error={"code": "invalid_training_file", "message": "Line 4 is not valid JSON", "param": None},
        )
    ]
    run_cli(capsys, *START)
    job_id = next(iter(server.jobs))
    code, out, _ = run_cli(capsys, "get-training-status", "--job-id", job_id, "--watch", "--interval", "0.1")
    assert code == 1
    assert out == (
        f"Job ID: {job_id}\nStatus: failed\nError: Line 4 is not valid JSON (invalid_training_file)\n"
    )


def test_list_and_cancel(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # a table of ids folds in the default 80 columns
    run_cli(capsys, *START)
    job_id = next(iter(server.jobs))
    code, out, _ = run_cli(capsys, "list-training-runs", "--agent-id", "autonomous-agent", "--json")
    [listed] = json.loads(out)
    assert listed["job_id"] == job_id
    assert listed["agent_id"] == "autonomous-agent"
    code, out, _ = run_cli(capsys, "list-training-runs")
    assert code == 0
    assert listed["id"] in out

    code, out, _ = run_cli(capsys, "cancel-training", "--job-id", job_id)
    assert code == 0
    assert out == f"Job ID: {job_id}\nStatus: cancelled\n"
    code, _, err = run_cli(capsys, "cancel-training", "--job-id", job_id)
    assert code == 1
    assert err.startswith("error: ")
    assert "already cancelled" in err
    assert len(err.strip().splitlines()) == 1


def test_permanent_provider_error_is_one_line_and_recorded(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults = [
        Fault("POST", r"^/fine_tuning/jobs$", status=400, body={"error": {"message": "Quota exceeded"}})
    ]
    code, out, err = run_cli(capsys, *START)
    assert code == 1
    assert "Status: failed" in out
    assert "Quota exceeded" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(capsys, "list-training-runs", "--json")
    assert "Quota exceeded" in json.loads(out)[0]["error"]


def test_a_start_refused_before_its_job_existed_is_tried_again_by_the_same_command(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults = [
        Fault(
            "POST",
            r"^/fine_tuning/jobs$",
            status=400,
            body={"error": {"message": "The model 'gpt-4o-mini' does not exist", "code": "model_not_found"}},
        )
    ]
    code, out, err = run_cli(capsys, *START)
    assert code == 1
    assert "Status: failed" in out
    [line] = err.strip().splitlines()
    assert line.startswith("error: training run run-")
    assert "failed before a job was created" in line
    assert "does not exist" in line
    assert line.endswith("fix that and run the same start-training again (it starts a new attempt)")

    # the refusal is gone (the model now exists): the very same command starts, no --restart
    code, out, err = run_cli(capsys, *START)
    assert code == 0, err
    assert out.splitlines()[0] == f"Job ID: {next(iter(server.jobs))}"
    assert "failed before a job was created" in err
    assert "this is attempt 2" in err
    assert server.job_creations() == 1
    code, out, _ = run_cli(capsys, "list-training-runs", "--json")
    assert [(run["attempt"], run["state"]) for run in json.loads(out)] == [
        (2, "validating_files"),
        (1, "failed"),
    ]


def test_repeating_a_start_whose_job_failed_exits_non_zero_and_names_restart(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.plan = [
        Step("failed", error={"code": "invalid_training_file", "message": "Line 4 is not valid JSON"})
    ]
    assert run_cli(capsys, *START)[0] == 0
    job_id = next(iter(server.jobs))
    assert "Status: failed" in run_cli(capsys, "get-training-status", "--job-id", job_id)[1]

    code, out, err = run_cli(capsys, *START)
    assert code == 1
    assert out.splitlines()[:3][2] == "Status: failed"
    [line] = err.strip().splitlines()
    assert line.endswith(
        f"(job {job_id}) failed: Line 4 is not valid JSON (invalid_training_file); pass --restart to start again"
    )
    assert server.job_creations() == 1  # a job was paid for: no silent second one

    server.plan = happy_plan()
    code, out, err = run_cli(capsys, *START, "--restart")
    assert code == 0, err
    assert server.job_creations() == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["get-training-status", "--job-id", "ftjob-nope"], 3, "ftjob-nope"),
        ([*START[:-4], "--training-epochs", "0"], 2, "--training-epochs"),
        ([*START[:4], "missing-dataset"], 3, "missing-dataset"),
        ([*START, "--suffix", "Bad Suffix"], 2, "--suffix"),
        (
            ["start-training", "--agent-id", "approval-agent", "--dataset-name", "autonomous-agent-v1"],
            2,
            "belongs to",
        ),
    ],
)
def test_bad_input_is_one_line_with_an_exit_code(
    server: FineTuneServer, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = run_cli(capsys, *args)
    assert got == code
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""
    assert server.job_creations() == 0

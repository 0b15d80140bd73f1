"""The get-training-status block for each state, from a status view (no I/O)."""

from __future__ import annotations

import pytest

from lightning.commands.training import status_lines
from lightning.services.training import TrainingStatus


def view(**changes: object) -> TrainingStatus:
    values: dict[str, object] = {
        "job_id": "ftjob-abc123xyz",
        "run_id": "run-1",
        "agent_id": "a",
        "status": "running",
        "progress_percent": 45,
    }
    values.update(changes)
    return TrainingStatus.model_validate(values)


def test_running_block_is_the_workshops() -> None:
    lines = status_lines(
        view(
            current_epoch=2,
            total_epochs=3,
            training_loss=0.4123,
            validation_loss=0.438,
            estimated_seconds_remaining=690,
        )
    )
    assert lines == [
        ("Job ID", "ftjob-abc123xyz"),
        ("Status", "running"),
        ("Progress", "45%"),
        ("Current Epoch", "2/3"),
        ("Training Loss", "0.412"),
        ("Validation Loss", "0.438"),
        ("Estimated Time Remaining", "12 minutes"),
    ]


def test_succeeded_block_is_the_workshops() -> None:
    lines = status_lines(
        view(
            status="succeeded",
            progress_percent=100,
            fine_tuned_model="ft:gpt-4o-mini:autonomous-agent:abc123",
            training_loss=0.318,
            validation_loss=0.342,
            trained_tokens=45230,
            duration_seconds=23 * 60 + 10,
        )
    )
    assert lines == [
        ("Job ID", "ftjob-abc123xyz"),
        ("Status", "succeeded"),
        ("Fine-tuned Model", "ft:gpt-4o-mini:autonomous-agent:abc123"),
        ("Training Loss", "0.318"),
        ("Validation Loss", "0.342"),
        ("Total Tokens", "45,230"),
        ("Duration", "23 minutes"),  # nearest minute; time left rounds up
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "unknown"), (0, "less than a minute"), (30, "1 minute"), (61, "2 minutes")]
)
def test_time_remaining_wording(seconds: float | None, shown: str) -> None:
    assert dict(status_lines(view(estimated_seconds_remaining=seconds)))["Estimated Time Remaining"] == shown


def test_unknown_values_are_dashes_and_failed_shows_the_error() -> None:
    running = dict(status_lines(view(status="queued", progress_percent=0)))
    assert running["Current Epoch"] == "-"
    assert running["Training Loss"] == "-"
    failed = status_lines(view(status="failed", error="quota exceeded"))
    assert failed == [("Job ID", "ftjob-abc123xyz"), ("Status", "failed"), ("Error", "quota exceeded")]
    assert status_lines(view(job_id=None, status="uploading"))[0] == ("Job ID", "(not created yet)")

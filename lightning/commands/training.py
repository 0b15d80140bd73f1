"""CLI commands for fine-tuning runs: start-training, get-training-status, list-training-runs,
cancel-training. Thin: parse, call one service in ``lightning.services.training``, print the workshop's
blocks (or ``--json``)."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import typer
from pydantic import ValidationError

from lightning.bootstrap import training_policy
from lightning.commands._common import container, format_int, print_block, print_json, print_table
from lightning.domain.errors import InvalidInput
from lightning.domain.training import Hyperparameters, TrainingRun
from lightning.services import training as service


def _minutes(seconds: float | None, *, up: bool = True) -> str:
    """``12 minutes``; time left rounds up, a duration to the nearest minute."""
    if seconds is None:
        return "unknown"
    minutes = (math.ceil(seconds / 60) if up else round(seconds / 60)) if seconds > 0 else 0
    if minutes == 0:
        return "less than a minute"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def status_lines(status: service.TrainingStatus) -> list[tuple[str, Any]]:
    """The workshop's blocks: the running one, the succeeded one, and the error for a failed job."""
    lines: list[tuple[str, Any]] = [
        ("Job ID", status.job_id or "(not created yet)"),
        ("Status", status.status),
        *_served_by(status.base_model, status.served_by),
    ]
    if status.status == "succeeded":
        lines += [
            ("Fine-tuned Model", status.fine_tuned_model or "-"),
            ("Training Loss", _loss(status.training_loss)),
            ("Validation Loss", _loss(status.validation_loss)),
            ("Total Tokens", format_int(status.trained_tokens)),
            ("Duration", _minutes(status.duration_seconds, up=False)),
        ]
    elif status.status in {"failed", "cancelled"}:
        if status.error:
            lines.append(("Error", status.error))
    else:
        epoch = (
            f"{status.current_epoch}/{status.total_epochs}"
            if status.current_epoch is not None and status.total_epochs
            else "-"
        )
        lines += [
            ("Progress", f"{status.progress_percent}%"),
            ("Current Epoch", epoch),
            ("Training Loss", _loss(status.training_loss)),
            ("Validation Loss", _loss(status.validation_loss)),
            ("Estimated Time Remaining", _minutes(status.estimated_seconds_remaining)),
        ]
    return lines


def _served_by(base_model: str | None, served_by: str | None) -> list[tuple[str, Any]]:
    """A line only when the provider trains another model under the name asked for (the local model
    server's aliases: gpt-4o-mini is local-base on this machine)."""
    if not served_by or not base_model or served_by == base_model:
        return []
    return [("Base Model", f"{base_model} is served by {served_by} on this machine")]


def _hyperparameters(epochs: int | None, lr: float | None, batch_size: int | None) -> Hyperparameters:
    try:
        return Hyperparameters(n_epochs=epochs, learning_rate_multiplier=lr, batch_size=batch_size)
    except ValidationError as error:
        first = error.errors()[0]
        flag = {
            "n_epochs": "--training-epochs",
            "learning_rate_multiplier": "--learning-rate-multiplier",
            "batch_size": "--batch-size",
        }.get(str(first["loc"][0]), str(first["loc"][0]))
        raise InvalidInput(f"{flag}: {first['msg']}", field=flag) from None


def start_training(
    agent_id: str = typer.Option(..., "--agent-id", help="Agent whose dataset is trained on."),
    dataset_name: str = typer.Option(..., "--dataset-name", help="A dataset built with build-dataset."),
    base_model: str | None = typer.Option(None, "--base-model", help="Default: BASE_MODEL setting."),
    training_epochs: int | None = typer.Option(None, "--training-epochs", help="Default: the provider's."),
    learning_rate_multiplier: float | None = typer.Option(None, "--learning-rate-multiplier"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    seed: int | None = typer.Option(None, "--seed"),
    suffix: str | None = typer.Option(
        None, "--suffix", help="≤ 18 chars of a-z0-9-_; default: the agent id."
    ),
    validation: bool = typer.Option(True, "--validation/--no-validation", help="Use the validation file."),
    restart: bool = typer.Option(
        False,
        "--restart",
        help="Start again when the same run's job failed or was cancelled (a start that failed before "
        "its job existed is retried without it).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Upload a dataset and start a fine-tuning job (idempotent: a repeat returns the same run, or tries
    again when that run failed before its job was created)."""
    c = container()
    epochs = training_epochs if training_epochs is not None else c.settings.training_epochs
    request = service.StartTraining(
        agent_id=agent_id,
        dataset_name=dataset_name,
        base_model=base_model or c.settings.base_model or "",
        hyperparameters=_hyperparameters(epochs, learning_rate_multiplier, batch_size),
        seed=seed,
        suffix=suffix,
        use_validation=validation,
        restart=restart,
    )
    result = service.start_training(request, c.training_ports(), training_policy(c.settings))
    run, failure = result.run, service.start_failure(result)
    if result.retried is not None and failure is None:
        print(
            f"note: the identical run {result.retried.id} failed before a job was created "
            f"({result.retried.error}); this is attempt {run.attempt}",
            file=sys.stderr,
        )
    elif not result.created and failure is None:
        print(
            f"note: an identical training run already exists ({run.id}, {run.state}); no new job was started",
            file=sys.stderr,
        )
    if as_json:
        print_json({"created": result.created, "run": run})
    else:
        print_block(
            [
                ("Job ID", run.job_id or "(not created yet)"),
                ("Run ID", run.id),
                ("Status", run.state),
                *_served_by(run.base_model, run.served_by),
            ]
        )
    if failure is not None:
        raise failure


def get_training_status(
    job_id: str = typer.Option(..., "--job-id", help="ftjob-… (or a run-… id)."),
    watch: bool = typer.Option(False, "--watch", help="Refresh until the job finishes."),
    interval: float = typer.Option(15.0, "--interval", min=0.1, help="Seconds between refreshes."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Progress, losses and ETA of a fine-tuning job; the result model once it succeeded."""
    c = container()
    shown: object = None
    while True:
        status = service.training_status(job_id, runs=c.runs, provider=c.fine_tuning)
        lines = status_lines(status)
        if as_json and watch:
            sys.stdout.write(json.dumps(status.model_dump(mode="json")) + "\n")
        elif as_json:
            print_json(status)
        elif lines != shown:  # --watch prints a block only when something in it changed
            if shown is not None:
                sys.stdout.write("\n")
            print_block(lines)
            shown = lines
        sys.stdout.flush()
        if not watch or status.terminal:
            break
        time.sleep(interval)
    if watch and status.status in {"failed", "cancelled"}:
        raise typer.Exit(1)


def list_training_runs(
    agent_id: str | None = typer.Option(None, "--agent-id"),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Training runs, newest first (as stored; get-training-status refreshes one)."""
    runs = service.list_training_runs(runs=container().runs, agent_id=agent_id, limit=limit)
    if as_json:
        print_json(runs)
        return
    print_table(
        ["Run ID", "Agent", "Dataset", "Base Model", "State", "Job ID", "Fine-tuned Model", "Created"],
        [_row(run) for run in runs],
    )


def _row(run: TrainingRun) -> list[Any]:
    return [
        run.id,
        run.agent_id,
        run.dataset_name,
        run.base_model,
        run.state,
        run.job_id or "-",
        run.fine_tuned_model or "-",
        f"{run.created_at:%Y-%m-%d %H:%M}",
    ]


def cancel_training(
    job_id: str = typer.Option(..., "--job-id", help="ftjob-… (or a run-… id)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cancel a fine-tuning job that has not finished."""
    c = container()
    run = service.cancel_training(job_id, runs=c.runs, provider=c.fine_tuning)
    if as_json:
        print_json(run)
    else:
        print_block([("Job ID", run.job_id or "(not created yet)"), ("Status", run.state)])


def register(app: typer.Typer) -> None:
    app.command("start-training")(start_training)
    app.command("get-training-status")(get_training_status)
    app.command("list-training-runs")(list_training_runs)
    app.command("cancel-training")(cancel_training)

"""``run-loop``: the whole loop on the local host, hands-off (label → dataset → fine-tune → promote)."""

from __future__ import annotations

import sys

import typer

from lightning.bootstrap import loop_policy
from lightning.commands._common import container, print_json
from lightning.config import check_time_limits
from lightning.domain.errors import InvalidInput
from lightning.services.loop import IterationReport, SystemClock, run_loop


def _describe(iteration: int, report: IterationReport) -> str:
    """One plain line per pass: what it did, then what the loop is waiting for (thresholds and times)."""
    parts: list[str] = []
    if report.labeled or report.label_failures:
        parts.append(
            f"labeled {report.labeled}"
            + (f" ({report.label_failures} failed)" if report.label_failures else "")
        )
    if report.datasets_built:
        parts.append(f"built {', '.join(report.datasets_built)}")
    for settlement in report.fine_tune_messages + report.done_messages:
        if settlement.outcome != "completed":
            parts.append(f"{settlement.message_id} {settlement.outcome} ({settlement.reason})")
    jobs = sum(1 for s in report.fine_tune_messages if s.outcome == "completed")
    if jobs:
        parts.append(f"fine-tune messages {jobs}")
    parts.extend(report.promotions)
    parts.extend(f"retrying: {error}" for error in report.errors)
    line = f"pass {iteration}: " + (" | ".join(parts) if parts else "idle")
    waiting = _waiting_for(report)
    return line + (f"; waiting for {' | '.join(waiting)}" if waiting else "")


def _waiting_for(report: IterationReport) -> list[str]:
    waiting = [f"{agent_id}: {reason}" for agent_id, reason in report.datasets_skipped.items()]
    for agent_id, reason in report.untrusted.items():
        if reason not in report.datasets_skipped.get(agent_id, ""):
            waiting.append(f"{agent_id}: judge not trusted ({reason}); datasets from human labels only")
    if report.next_dataset_check_seconds is not None:
        waiting.append(f"the next dataset check in {_duration(report.next_dataset_check_seconds)}")
    waiting.extend(f"fine-tune {run_id} ({state})" for run_id, state in report.fine_tunes_in_flight.items())
    return waiting


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_loop_command(
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Stop once a pass finds nothing to do and no fine-tune is in flight."
    ),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between passes."),
    poll_seconds: float | None = typer.Option(
        None, "--poll-seconds", help="Delay before re-polling a fine-tune."
    ),
    dataset_interval: float | None = typer.Option(
        None, "--dataset-interval", help="Seconds between dataset checks (the timer); default 1800."
    ),
    max_iterations: int | None = typer.Option(None, "--max-iterations", min=1),
    evaluator: str | None = typer.Option(None, "--evaluator", help="task_adherence (default) or rubric."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per pass."),
) -> None:
    """Run the loop on this machine with the configured stores, queue and trainer."""
    if interval < 0:
        raise InvalidInput("--interval must be >= 0", field="interval")
    c = container()
    check_time_limits(c.settings)  # the same limits as the Functions host: refuse settings that cannot fit
    policy = loop_policy(c.settings, poll_seconds=poll_seconds, dataset_interval=dataset_interval)
    ports = c.loop_ports(evaluator)

    def show(iteration: int, report: IterationReport) -> None:
        if as_json:
            print_json({"pass": iteration, **report.model_dump(mode="json")})
        else:
            sys.stdout.write(_describe(iteration, report) + "\n")
            sys.stdout.flush()

    try:
        run_loop(
            ports,
            policy,
            clock=SystemClock(),
            interval_seconds=interval,
            until_idle=until_idle,
            max_iterations=1 if once else max_iterations,
            on_iteration=show,
        )
    except KeyboardInterrupt:
        sys.stderr.write("stopped\n")


def register(app: typer.Typer) -> None:
    app.command("run-loop")(run_loop_command)

"""The local host of the loop: the same steps the Functions app runs, bound to embedded equivalents.

    Functions host                      local host (this module, ``lightning-loop run-loop``)
    Cosmos change feed on rl_episodes → EpisodeStore.changes_since(cursor) + CursorStore
    timer trigger                     → every ``dataset_interval_seconds``
    Service Bus fine-tune-jobs        → Queue.receive("fine-tune-jobs")  (SQLite queue)
    Service Bus fine-tune-done        → Queue.receive("fine-tune-done")

``run_iteration`` does one pass; ``run_loop`` repeats it until asked to stop or, with
``until_idle``, until a pass did nothing and no fine-tune is still in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow
from lightning.domain.errors import TransientProviderError
from lightning.domain.messages import (
    FINE_TUNE_DONE,
    FINE_TUNE_JOBS,
    DoneMessage,
    PollFineTune,
    StartFineTune,
    parse_done_message,
)
from lightning.ports.bundles import LoopPorts
from lightning.ports.clock import Clock
from lightning.services.datasets import DatasetPolicy, build_datasets_when_ready
from lightning.services.labeling import LabelingPolicy, label_new_episodes
from lightning.services.promotion import PromotionOutcome, PromotionPolicy, promote_and_roll_out
from lightning.services.queue_worker import Settlement, drain
from lightning.services.training import FineTuneStep, TrainingPolicy, start_or_poll_fine_tune

logger = logging.getLogger(__name__)

LABELING_CURSOR = "labeling:episodes"
_IN_FLIGHT_SCAN = 200  # newest runs looked at for unfinished fine-tunes


class LoopPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    labeling: LabelingPolicy = Field(default_factory=LabelingPolicy)
    datasets: DatasetPolicy = Field(default_factory=DatasetPolicy)
    training: TrainingPolicy = Field(default_factory=TrainingPolicy)
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    dataset_interval_seconds: float = Field(default=1800.0, ge=0, description="The timer's period.")
    change_batch: int = Field(default=1000, ge=1)
    visibility_timeout: float = Field(default=300.0, gt=0)


class IterationReport(BaseModel):
    """What one pass did, and what the loop is waiting for; ``busy`` is False when it found nothing to do."""

    labeled: int = 0
    label_failures: int = 0
    datasets_built: list[str] = Field(default_factory=list)
    datasets_skipped: dict[str, str] = Field(
        default_factory=dict,
        description="Agent id → why no dataset was built, with the threshold and times (only on passes that "
        "checked: see next_dataset_check_seconds).",
    )
    untrusted: dict[str, str] = Field(
        default_factory=dict, description="Agents whose judge is below the trust floor, and why."
    )
    next_dataset_check_seconds: float | None = Field(
        default=None,
        description="Seconds until the timer checks datasets again; None on a pass that checked them.",
    )
    fine_tunes_in_flight: dict[str, str] = Field(
        default_factory=dict,
        description="Run id → state of every fine-tune not finished after this pass (the loop waits for them).",
    )
    fine_tune_messages: list[Settlement] = Field(default_factory=list)
    done_messages: list[Settlement] = Field(default_factory=list)
    promotions: list[str] = Field(default_factory=list, description="One line per promotion outcome.")
    errors: list[str] = Field(default_factory=list, description="Transient failures; the next pass retries.")

    @property
    def busy(self) -> bool:
        return bool(
            self.labeled
            or self.datasets_built
            or self.fine_tune_messages
            or self.done_messages
            or self.errors
        )


def label_changes(ports: LoopPorts, policy: LoopPolicy, *, report: IterationReport) -> None:
    """The change-feed step: label what changed since the saved cursor, then move the cursor."""
    while True:
        cursor = ports.cursors.get(LABELING_CURSOR)
        batch = ports.labeling.episodes.changes_since(cursor, limit=policy.change_batch)
        if batch.episodes:
            labeled = label_new_episodes(batch.episodes, ports.labeling, policy.labeling)
            report.labeled += labeled.labeled
            report.label_failures += labeled.failed
        if batch.cursor == cursor:
            return
        # Saved after the batch is handled: a crash re-reads it, and labeling skips labeled episodes.
        ports.cursors.set(LABELING_CURSOR, batch.cursor)
        if len(batch.episodes) < policy.change_batch:
            return


def run_iteration(
    ports: LoopPorts, policy: LoopPolicy, *, build_datasets: bool, now: datetime | None = None
) -> IterationReport:
    """One pass of the loop: label → (timer) build datasets → start/poll fine-tunes → promote."""
    report = IterationReport()
    label_changes(ports, policy, report=report)
    if build_datasets:
        step = build_datasets_when_ready(ports.datasets, policy.datasets, now=now)
        report.datasets_built = [manifest.name for manifest in step.built]
        report.datasets_skipped = dict(step.skipped)
        report.untrusted = dict(step.untrusted)

    def fine_tune(body: dict[str, Any]) -> object:
        return fine_tune_from_message(body, ports, policy)

    def promote(body: dict[str, Any]) -> object:
        outcome = promote_from_message(parse_done_message(body), ports, policy)
        if outcome is not None:
            report.promotions.append(f"{outcome.action}: {outcome.message}")
        return outcome

    visibility = policy.visibility_timeout
    report.fine_tune_messages = drain(
        ports.queue, FINE_TUNE_JOBS, handle=fine_tune, visibility_timeout=visibility
    )
    report.done_messages = drain(ports.queue, FINE_TUNE_DONE, handle=promote, visibility_timeout=visibility)
    report.fine_tunes_in_flight = {
        run.id: run.state for run in ports.training.runs.list(limit=_IN_FLIGHT_SCAN) if not run.terminal
    }
    return report


def fine_tune_from_message(
    message: Mapping[str, Any] | StartFineTune | PollFineTune, ports: LoopPorts, policy: LoopPolicy
) -> FineTuneStep:
    """The ``fine-tune-jobs`` step with the loop's ports (both hosts call it)."""
    return start_or_poll_fine_tune(message, ports.training, policy.training)


def promote_from_message(
    message: DoneMessage, ports: LoopPorts, policy: LoopPolicy
) -> PromotionOutcome | None:
    """The ``fine-tune-done`` step with the loop's ports (both hosts call it): a run's completion or a
    promotion job asked for over HTTP."""
    return promote_and_roll_out(message, ports.promotion, policy.promotion)


def run_loop(
    ports: LoopPorts,
    policy: LoopPolicy,
    *,
    clock: Clock,
    interval_seconds: float,
    until_idle: bool = False,
    max_iterations: int | None = None,
    on_iteration: Callable[[int, IterationReport], None] | None = None,
) -> int:
    """Repeat ``run_iteration`` every ``interval_seconds``; returns how many passes ran."""
    last_dataset_check: datetime | None = None
    iterations = 0
    interval = timedelta(seconds=policy.dataset_interval_seconds)
    while max_iterations is None or iterations < max_iterations:
        now = clock.now()
        timer_due = last_dataset_check is None or now - last_dataset_check >= interval
        if timer_due:
            last_dataset_check = now
        try:
            report = run_iteration(ports, policy, build_datasets=timer_due, now=now)
            if not timer_due and last_dataset_check is not None:
                report.next_dataset_check_seconds = (last_dataset_check + interval - now).total_seconds()
        except TransientProviderError as exc:
            # A provider or store hiccup: nothing was lost (the cursor only moves after a batch is
            # labeled, messages are redelivered), so the next pass simply tries again.
            logger.warning("loop pass failed, retrying next pass: %s", exc)
            report = IterationReport(errors=[f"{type(exc).__name__}: {exc}"])
            if timer_due:
                last_dataset_check = None
        iterations += 1
        if on_iteration is not None:
            on_iteration(iterations, report)
        if until_idle and not report.busy and not report.fine_tunes_in_flight:
            break
        clock.sleep(interval_seconds)
    return iterations


class SystemClock:
    """The real clock (a Clock for hosts that have no other)."""

    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)

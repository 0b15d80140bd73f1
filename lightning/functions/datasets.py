"""Timer-triggered dataset builds: ``build_datasets_when_ready`` on the schedule in app setting
``DATASET_TIMER_SCHEDULE`` (NCRONTAB with seconds, default every 30 minutes: ``0 */30 * * * *``).

For each agent with enough new good episodes since its last dataset (``DATASET_MIN_EPISODES``,
``DATASET_MIN_REWARD``, ``DATASET_MIN_HOURS_BETWEEN``) it builds a dataset and sends ``StartFineTune`` to
``fine-tune-jobs``. Errors raise so the function-level retry policy below runs the tick again (the step
is idempotent: a committed dataset is not rebuilt, the start message is de-duplicated by its id). Timer
retries are function-level only, and best effort: they are not resumed on another instance
(docs/functions.md, Retries).
"""

from __future__ import annotations

import logging

import azure.functions as func

from lightning.functions._runtime import container, loop_policy

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(
    arg_name="timer", schedule="%DATASET_TIMER_SCHEDULE%", run_on_startup=False, use_monitor=True
)
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="3",
    minimum_interval="00:00:30",
    maximum_interval="00:05:00",
)
def build_datasets(timer: func.TimerRequest) -> None:
    from lightning.services.datasets import build_datasets_when_ready

    if timer.past_due:
        logger.info("dataset timer is past due; running now")
    report = build_datasets_when_ready(container().dataset_ports(), loop_policy().datasets)
    for agent_id, reason in report.untrusted.items():
        logger.warning(
            "dataset timer: judge of %s not trusted, building from human labels only: %s",
            agent_id,
            reason,
            extra={"agent_id": agent_id},
        )
    logger.info(
        "dataset timer: built %s, queued %s, skipped %s",
        [m.name for m in report.built],
        report.queued,
        report.skipped,
    )

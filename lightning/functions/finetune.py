"""Service Bus triggers of the fine-tune queues (connection app setting ``SERVICEBUS_CONNECTION``).

* ``fine-tune-jobs`` → ``start_or_poll_fine_tune``: a start starts the run and schedules a poll; a poll
  advances the run and re-schedules itself until the run is terminal, then sends ``FineTuneDone`` to
  ``fine-tune-done``. Follow-up messages carry deterministic ids, so duplicate deliveries are harmless.
* ``fine-tune-done`` → ``promote_and_roll_out``: register, deploy, gate, roll out through the
  Kubernetes API. Failures are recorded on the model version by the service.

Settling: the host completes a message when the function returns (``autoCompleteMessages``). When it
raises, the message is abandoned and redelivered; Service Bus dead-letters it after the queue's
``maxDeliveryCount`` (reason ``MaxDeliveryCountExceeded``; the Bicep sets it). That covers both
transient failures (retried) and messages that can never succeed (``InvalidInput``/``NotFound``: logged
as errors with the reason, then dead-lettered once the deliveries run out) — the Python trigger has
no way to dead-letter a message directly.

With managed identity, set ``SERVICEBUS_CONNECTION__fullyQualifiedNamespace`` (never a connection
string); the app also needs ``LIGHTNING_QUEUE=servicebus`` and ``SERVICEBUS_NAMESPACE`` so the
services send follow-ups through ``ServiceBusQueue``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from lightning.domain.errors import InvalidInput, NotFound
from lightning.domain.messages import FINE_TUNE_DONE, FINE_TUNE_JOBS
from lightning.functions._runtime import loop_policy, loop_ports

logger = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def message_body(message: func.ServiceBusMessage) -> dict[str, Any]:
    """The JSON object a queue message carries, or ``InvalidInput``."""
    try:
        body = json.loads(message.get_body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"message body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("message body must be a JSON object")
    return body


def _log_failure(queue: str, message: func.ServiceBusMessage, exc: Exception) -> None:
    message_id = getattr(message, "message_id", None)
    deliveries = getattr(message, "delivery_count", None)
    if isinstance(exc, InvalidInput | NotFound):
        logger.error(
            "%s message %s can never succeed (delivery %s; dead-lettered after the last): %s",
            queue,
            message_id,
            deliveries,
            exc,
            extra={"queue": queue, "message_id": message_id, "reason": type(exc).__name__},
        )
    else:
        logger.warning(
            "%s message %s failed (delivery %s; will be retried): %s: %s",
            queue,
            message_id,
            deliveries,
            type(exc).__name__,
            exc,
            extra={"queue": queue, "message_id": message_id},
        )


@bp.service_bus_queue_trigger(
    arg_name="message", queue_name=FINE_TUNE_JOBS, connection="SERVICEBUS_CONNECTION"
)
def fine_tune_jobs(message: func.ServiceBusMessage) -> None:
    from lightning.services.loop import fine_tune_from_message

    try:
        step = fine_tune_from_message(message_body(message), loop_ports(), loop_policy())
    except Exception as exc:
        _log_failure(FINE_TUNE_JOBS, message, exc)
        raise
    logger.info(
        "fine-tune run %s is %s%s",
        step.run.id,
        step.run.state,
        f"; next poll {step.scheduled_poll}" if step.scheduled_poll else "; completion sent",
        extra={"run_id": step.run.id, "agent_id": step.run.agent_id},
    )


@bp.service_bus_queue_trigger(
    arg_name="message", queue_name=FINE_TUNE_DONE, connection="SERVICEBUS_CONNECTION"
)
def fine_tune_done(message: func.ServiceBusMessage) -> None:
    from lightning.domain.messages import FineTuneDone
    from lightning.functions._http import parse_model
    from lightning.services.loop import promote_from_message

    try:
        done = parse_model(FineTuneDone, message_body(message))
        outcome = promote_from_message(done, loop_ports(), loop_policy())
    except Exception as exc:
        _log_failure(FINE_TUNE_DONE, message, exc)
        raise
    if outcome is None:
        logger.info("run %s: nothing to promote", done.run_id, extra={"run_id": done.run_id})
    else:
        logger.info(
            "run %s: %s — %s", done.run_id, outcome.action, outcome.message, extra={"run_id": done.run_id}
        )

"""Service Bus triggers of the fine-tune queues (connection app setting ``SERVICEBUS_CONNECTION``).

* ``fine-tune-jobs`` → ``start_or_poll_fine_tune``: a start starts the run and schedules a poll; a poll
  advances the run and re-schedules itself until the run is terminal, then sends ``FineTuneDone`` to
  ``fine-tune-done``. Follow-up messages carry deterministic ids, so duplicate deliveries are harmless.
* ``fine-tune-done`` → ``promote_and_roll_out``: register, deploy, gate, roll out through the
  Kubernetes API. Failures are recorded on the model version by the service.

Settling, by the one rule both hosts follow (docs/guarantees.md; ``lightning/services/queue_worker.py``):
the host completes a message when the function returns (``autoCompleteMessages``); when it raises, the
host abandons it and Service Bus delivers it again, then dead-letters it once it has failed the queue's
``maxDeliveryCount`` deliveries (reason ``MaxDeliveryCountExceeded``; the Bicep sets 5). That holds for
messages that can never succeed too (``InvalidInput``/``NotFound``): the Python trigger has no settlement
API in the GA programming model, so the local worker does the same. Every failed delivery is logged by
``log_failed_delivery`` with the message id and delivery count (a traceback for unexpected errors).

``fine-tune-done`` also carries promotion jobs asked for over HTTP (``PromoteModel``, ``kind: promote``;
``lightning/functions/promotions.py``): same trigger, same rule.

With managed identity, set ``SERVICEBUS_CONNECTION__fullyQualifiedNamespace`` (never a connection
string); the app also needs ``LIGHTNING_QUEUE=servicebus`` and ``SERVICEBUS_NAMESPACE`` so the
services send follow-ups through ``ServiceBusQueue``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from lightning.domain.errors import InvalidInput
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
    from lightning.services.queue_worker import log_failed_delivery

    message_id = getattr(message, "message_id", None)
    deliveries = getattr(message, "delivery_count", None)
    log_failed_delivery(queue, message_id=message_id, delivery=deliveries, exc=exc)


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
    from pydantic import ValidationError

    from lightning.domain.messages import PromoteModel, parse_done_message
    from lightning.services.loop import promote_from_message

    try:
        try:
            done = parse_done_message(message_body(message))
        except ValidationError as exc:
            raise InvalidInput(f"not a fine-tune-done message: {exc.errors()[0].get('msg', exc)}") from None
        outcome = promote_from_message(done, loop_ports(), loop_policy())
    except Exception as exc:
        _log_failure(FINE_TUNE_DONE, message, exc)
        raise
    what = f"promotion job {done.job_id}" if isinstance(done, PromoteModel) else f"run {done.run_id}"
    extra = {"message_id": getattr(message, "message_id", None)}
    if outcome is None:
        logger.info("%s: nothing to do", what, extra=extra)
    else:
        logger.info("%s: %s — %s", what, outcome.action, outcome.message, extra=extra)

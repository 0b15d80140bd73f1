"""Retry policies where Microsoft documents them, as the host reads them from the indexed functions.

"Azure Functions error handling and retries"
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-error-pages): Cosmos DB and timer
triggers retry through *function-level* retry policies; Service Bus retries through its binding
extension (abandon → redelivery → dead-letter after the queue's maxDeliveryCount); HTTP never retries.
host.json has no app-wide retry section any more (see test_indexing.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.functions.harness import indexed


def retry_policy(name: str) -> dict[str, Any] | None:
    fn = indexed()[name]
    settings: dict[str, Any] | None = fn.get_settings_dict("retry_policy")
    return settings


@pytest.mark.parametrize(
    ("name", "max_retries"),
    [("label_changed_episodes", "5"), ("build_datasets", "3")],
)
def test_the_change_feed_and_timer_retry_with_exponential_backoff(name: str, max_retries: str) -> None:
    policy = retry_policy(name)
    assert policy is not None, f"{name} has no function-level retry policy"
    assert policy["strategy"] == "exponential_backoff"
    assert policy["max_retry_count"] == max_retries
    minimum = [int(part) for part in policy["minimum_interval"].split(":")]
    maximum = [int(part) for part in policy["maximum_interval"].split(":")]
    assert (0, 0, 1) <= tuple(minimum) < tuple(maximum) <= (0, 10, 0)  # within functionTimeout


def test_queue_and_http_functions_carry_no_retry_policy() -> None:
    # Service Bus: redelivery and dead-lettering are the binding's; HTTP: the caller retries.
    for name in indexed():
        if name not in ("label_changed_episodes", "build_datasets"):
            assert retry_policy(name) is None, name

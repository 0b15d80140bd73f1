"""ServiceBusQueue beyond the queue contract: how it builds its client, and message mapping edge cases.

The contract suite (``tests/integration/contracts/test_queue_contract.py``, param ``servicebus``) runs
the adapter over the broker stand-in in ``broker.py``; see there for what is real and what stands in.
"""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from lightning.adapters.servicebus.queue import ServiceBusQueue, to_service_bus_message
from lightning.bootstrap import Container, servicebus_queue
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError, Conflict
from lightning.ports.queue import ReceivedMessage
from tests.integration.contracts.test_queue_contract import FakeNow
from tests.integration.servicebus.broker import LocalBroker, LocalServiceBusClient

pytestmark = pytest.mark.servicebus


def test_the_container_uses_entra_id_on_the_namespace(tmp_path: object) -> None:
    settings = Settings(lightning_queue="servicebus", servicebus_namespace="myns.servicebus.windows.net")
    queue = Container(settings).queue
    assert isinstance(queue, ServiceBusQueue)
    client = queue._client
    assert isinstance(client, ServiceBusClient)
    assert client.fully_qualified_namespace == "myns.servicebus.windows.net"
    assert isinstance(client._credential, DefaultAzureCredential)
    queue.close()


def test_a_connection_string_is_for_the_emulator_only() -> None:
    settings = Settings(
        lightning_queue="servicebus",
        servicebus_connection_string="Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;",
    )
    queue = servicebus_queue(settings)
    assert queue._client.fully_qualified_namespace == "localhost"
    queue.close()


def test_missing_namespace_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="SERVICEBUS_NAMESPACE"):
        servicebus_queue(Settings(lightning_queue="servicebus"))


def test_outgoing_message_is_json_with_its_id() -> None:
    message = to_service_bus_message(
        {"kind": "poll", "run_id": "run-1", "attempt": 2}, message_id="poll-run-1-2"
    )
    assert isinstance(message, ServiceBusMessage)
    assert message.message_id == "poll-run-1-2"
    assert message.content_type == "application/json"
    assert str(message) == '{"kind":"poll","run_id":"run-1","attempt":2}'


def test_a_foreign_non_json_message_is_received_not_crashed_on() -> None:
    broker = LocalBroker(max_delivery_count=3, now=FakeNow())
    queue = ServiceBusQueue(LocalServiceBusClient(broker))
    broker.enqueue("fine-tune-jobs", ServiceBusMessage(b"\x00not json", message_id="raw-1"), None)
    [message] = queue.receive("fine-tune-jobs")
    assert message.body == {"_raw": "\x00not json"}
    queue.dead_letter(message, reason="InvalidMessage", description="not JSON")
    assert [d.reason for d in queue.dead_letters("fine-tune-jobs")] == ["InvalidMessage"]


def test_settling_a_message_this_client_never_leased_is_a_conflict() -> None:
    queue = ServiceBusQueue(LocalServiceBusClient(LocalBroker(max_delivery_count=3, now=FakeNow())))
    stranger = ReceivedMessage(
        queue="fine-tune-jobs",
        message_id="m",
        body={},
        delivery_count=1,
        enqueued_at=FakeNow()(),
        lock_token="00000000-0000-0000-0000-000000000000",
    )
    with pytest.raises(Conflict):
        queue.complete(stranger)

"""The Azure host end to end, through the Functions handlers, on local servers.

Episodes land in Cosmos DB (the emulator) → the change-feed handler labels them → the timer handler
builds a dataset and queues its fine-tune → the ``fine-tune-jobs`` handler starts the job on the local
model server and polls it (the scheduled polls travel through the queue) → the ``fine-tune-done``
handler promotes the model through the gate and patches the agent's Deployment on the Kubernetes API
stand-in. Every handler gets the real ``azure.functions`` object its trigger would deliver.

Stand-ins, and why: the queue is the SQLite queue (no Service Bus emulator exists here; the Service Bus
adapter passes the same queue contract), blobs are the local folder store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from lightning.adapters.modelserver.server import RunningServer
from lightning.bootstrap import Container
from lightning.domain.messages import FINE_TUNE_DONE, FINE_TUNE_JOBS
from lightning.ports.episodes import EpisodeQuery
from lightning.ports.queue import ReceivedMessage
from tests.e2e.traffic import captured_episodes
from tests.integration.functions.harness import (
    document_list,
    handler,
    run_on,
    servicebus_message,
    timer_request,
)
from tests.standins.kubernetes_api import container_env

pytestmark = [pytest.mark.cosmos, pytest.mark.slow]

AGENT = "autonomous-agent"
NS = "mcp-agents"


def _deliver(name: str, message: ReceivedMessage) -> None:
    """Hand a queue message to its Service Bus trigger the way the host does."""
    handler(name)(
        servicebus_message(message.body, message_id=message.message_id, delivery_count=message.delivery_count)
    )


@pytest.fixture
def azure_host(
    cosmos_settings: Callable[..., Any],
    use_model_server: RunningServer,
    kubernetes_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Container:
    for name, value in {
        "DATASET_MIN_EPISODES": "40",
        "DATASET_MIN_HOURS_BETWEEN": "0",
        "FINE_TUNE_POLL_SECONDS": "0.2",
        "LIGHTNING_EVALUATOR": "rubric",
    }.items():
        monkeypatch.setenv(name, value)
    kubernetes_api.add_deployment(NS, AGENT, env={"ENABLE_EPISODE_CAPTURE": "true"})
    return Container(cosmos_settings())


def test_episodes_to_a_rolled_out_model_through_the_function_handlers(
    azure_host: Container, kubernetes_api: Any
) -> None:
    c = azure_host
    assert c.settings.lightning_store == "cosmos"
    c.episodes.add(captured_episodes(240, seed=5, wrong_share=0.3, prefix="chain"))

    with run_on(c):
        # 1. Change feed: the documents as Cosmos holds them (with _etag), in two deliveries.
        store: Any = c.episodes
        items = list(store._c.query_items("SELECT * FROM c", enable_cross_partition_query=True))
        assert len(items) == 240
        handler("label_changed_episodes")(document_list(items[:100]))
        handler("label_changed_episodes")(document_list(items[100:]))
        assert c.episodes.count(EpisodeQuery(agent_id=AGENT, labeled=False)) == 0

        # 2. Timer: one dataset, one StartFineTune.
        handler("build_datasets")(timer_request())
        [manifest] = c.datasets.list(agent_id=AGENT)

        # 3. fine-tune-jobs: start (delivered twice, as Service Bus may), then scheduled polls until
        #    the run is terminal.
        [start] = c.queue.receive(FINE_TUNE_JOBS)
        assert start.body["dataset_name"] == manifest.name
        _deliver("fine_tune_jobs", start)
        _deliver("fine_tune_jobs", start.model_copy(update={"delivery_count": 2}))
        c.queue.complete(start)
        assert len(c.runs.list(agent_id=AGENT)) == 1  # the duplicate found the same run
        deadline = time.monotonic() + 120
        done: list[ReceivedMessage] = []
        while not done:
            assert time.monotonic() < deadline, "the fine-tune never finished"
            for message in c.queue.receive(FINE_TUNE_JOBS, max_messages=10):
                _deliver("fine_tune_jobs", message)
                c.queue.complete(message)
            done = c.queue.receive(FINE_TUNE_DONE)
            if not done:
                time.sleep(0.1)
        [run] = c.runs.list(agent_id=AGENT)
        assert run.state == "succeeded"
        assert run.dataset_name == manifest.name

        # 4. fine-tune-done: gate, deploy, roll out, activate.
        [finished] = done
        _deliver("fine_tune_done", finished)
        c.queue.complete(finished)

    active = c.models.active(AGENT)
    assert active is not None
    assert active.model_name == run.fine_tuned_model
    assert active.dataset_name == manifest.name
    assert active.decision is not None
    assert active.decision.promote
    env = container_env(kubernetes_api.deployment(NS, AGENT))
    assert env["USE_TUNED_MODEL"] == "true"
    assert env["TUNED_MODEL_NAME"] == active.served_name
    assert env["ENABLE_EPISODE_CAPTURE"] == "true"
    template = kubernetes_api.deployment(NS, AGENT)["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]

    # A redelivered completion changes nothing (idempotent promotion).
    with run_on(c):
        patches = sum(r["method"] == "PATCH" for r in kubernetes_api.requests)
        handler("fine_tune_done")(
            servicebus_message(finished.body, message_id=finished.message_id, delivery_count=2)
        )
    assert sum(r["method"] == "PATCH" for r in kubernetes_api.requests) == patches
    assert c.models.active(AGENT).id == active.id  # type: ignore[union-attr]

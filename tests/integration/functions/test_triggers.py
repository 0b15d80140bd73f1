"""The non-HTTP triggers, invoked as the host does, on real adapters (SQLite store and queue, local
blob folder; the Cosmos emulator for the change feed's Cosmos-shaped documents)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lightning.adapters.cosmos.episodes import CosmosEpisodeStore
from lightning.bootstrap import Container
from lightning.domain.errors import InvalidInput, NotFound
from lightning.domain.messages import FINE_TUNE_DONE, FINE_TUNE_JOBS
from lightning.ports.episodes import EpisodeQuery
from tests.integration.functions.episodes_factory import AGENT, captured, human_label
from tests.integration.functions.harness import (
    document_list,
    handler,
    run_on,
    servicebus_message,
    timer_request,
)


def _feed_documents(container: Container, ids: list[str]) -> list[dict[str, Any]]:
    """What the change feed delivers: the stored documents, with their ``_etag``."""
    docs = []
    for episode_id in ids:
        episode = container.episodes.get(episode_id)
        docs.append({**episode.to_document(), "_etag": episode.etag, "_ts": 1})
    return docs


# --- change feed -------------------------------------------------------------------------------------
def test_change_feed_labels_new_episodes_and_skips_labeled_ones(app_container: Container) -> None:
    store = app_container.episodes
    store.add(captured(6))
    ids = [f"fn-3-{i}" for i in range(6)]
    store.save_label(ids[0], human_label(0.2))
    docs = _feed_documents(app_container, ids)
    docs.append({"id": "not-an-episode", "kind": "lease"})  # foreign documents are skipped, not fatal

    handler("label_changed_episodes")(document_list(docs))

    assert store.count(EpisodeQuery(labeled=False)) == 0
    assert store.get(ids[0]).label.source == "human"  # type: ignore[union-attr]
    assert store.get(ids[0]).reward == 0.2  # a human label always wins
    for episode_id in ids[1:]:
        label = store.get(episode_id).label
        assert label is not None
        assert label.source == "auto"
        assert label.evaluator == app_container.evaluator().name

    # Its own writes come back through the feed: nothing is written again.
    etags = {e.id: e.etag for e in store.query(EpisodeQuery())}
    handler("label_changed_episodes")(document_list(_feed_documents(app_container, ids)))
    assert {e.id: e.etag for e in store.query(EpisodeQuery())} == etags


def test_a_failing_episode_does_not_block_the_batch(app_container: Container) -> None:
    store = app_container.episodes
    store.add(captured(3) + captured(1, prefix="ghost", agent_id="no-such-agent"))
    ids = ["fn-3-0", "ghost-3-0", "fn-3-1", "fn-3-2"]

    handler("label_changed_episodes")(document_list(_feed_documents(app_container, ids)))

    assert store.get("ghost-3-0").labeled is False  # unknown agent: recorded, not raised
    assert all(store.get(i).labeled for i in ("fn-3-0", "fn-3-1", "fn-3-2"))


def test_a_stale_feed_snapshot_never_overwrites_a_newer_label(app_container: Container) -> None:
    store = app_container.episodes
    store.add(captured(1))
    stale = _feed_documents(app_container, ["fn-3-0"])
    store.save_label("fn-3-0", human_label(0.3))  # a person labeled it after the feed read it

    handler("label_changed_episodes")(document_list(stale))

    assert store.get("fn-3-0").label == human_label(0.3).model_copy(
        update={"labeled_at": store.get("fn-3-0").label.labeled_at}  # type: ignore[union-attr]
    )


@pytest.mark.cosmos
def test_change_feed_on_cosmos_documents(
    cosmos_settings: Callable[..., Any], app_container: Container
) -> None:
    """The same handler against the Cosmos store, fed the raw items the emulator holds."""
    cosmos = Container(cosmos_settings(lightning_evaluator="rubric"))
    cosmos.episodes.add(captured(4))
    store = cosmos.episodes
    assert isinstance(store, CosmosEpisodeStore)
    items = list(store._c.query_items("SELECT * FROM c", enable_cross_partition_query=True))
    assert all("_etag" in item for item in items)

    with run_on(cosmos):
        handler("label_changed_episodes")(document_list(items))

    labeled = list(store.query(EpisodeQuery(labeled=True)))
    assert len(labeled) == 4
    assert all(e.label is not None and e.label.source == "auto" for e in labeled)


# --- timer ---------------------------------------------------------------------------------------------
def test_timer_builds_a_dataset_and_queues_its_fine_tune(app_container: Container) -> None:
    store = app_container.episodes
    episodes = captured(24, seed=8)
    store.add(episodes)
    for episode in episodes:
        store.save_label(episode.id, human_label(0.9))

    handler("build_datasets")(timer_request())

    [manifest] = app_container.datasets.list(agent_id=AGENT)
    assert manifest.episode_count == 24
    [message] = app_container.queue.receive(FINE_TUNE_JOBS)
    assert message.body["kind"] == "start"
    assert message.body["dataset_name"] == manifest.name
    app_container.queue.abandon(message)

    # The next tick finds nothing new: no second dataset, and the start message stays de-duplicated.
    handler("build_datasets")(timer_request(past_due=True))
    assert len(app_container.datasets.list(agent_id=AGENT)) == 1
    assert len(app_container.queue.receive(FINE_TUNE_JOBS, max_messages=10)) == 1


def test_timer_with_too_few_episodes_builds_nothing(app_container: Container) -> None:
    app_container.episodes.add(captured(3))
    handler("build_datasets")(timer_request())
    assert app_container.datasets.list() == []
    assert app_container.queue.receive(FINE_TUNE_JOBS) == []


# --- Service Bus ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", InvalidInput),
        ([1, 2], InvalidInput),
        ({"kind": "explode"}, InvalidInput),
        ({"kind": "start", "agent_id": AGENT}, InvalidInput),  # no dataset_name
        ({"kind": "start", "agent_id": AGENT, "dataset_name": "no-such-dataset"}, NotFound),
        ({"kind": "poll", "run_id": "run-missing"}, NotFound),
    ],
)
def test_fine_tune_jobs_refuses_messages_that_can_never_succeed(
    app_container: Container, body: Any, error: type[Exception]
) -> None:
    """Raised so the host abandons the message; Service Bus dead-letters it after maxDeliveryCount."""
    with pytest.raises(error):
        handler("fine_tune_jobs")(servicebus_message(body))
    assert app_container.runs.list() == []
    assert app_container.queue.receive(FINE_TUNE_JOBS) == []
    assert app_container.queue.receive(FINE_TUNE_DONE) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\xff\xfe", InvalidInput),
        ({"run_id": "r"}, InvalidInput),  # agent_id and state missing
        ({"run_id": "run-missing", "agent_id": AGENT, "state": "succeeded"}, NotFound),
    ],
)
def test_fine_tune_done_refuses_bad_messages(
    app_container: Container, body: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        handler("fine_tune_done")(servicebus_message(body))
    assert app_container.models.list(AGENT) == []


def test_fine_tune_done_for_a_failed_run_promotes_nothing(app_container: Container) -> None:
    from lightning.domain.training import TrainingRun

    run = TrainingRun(
        id="run-failed-1",
        agent_id=AGENT,
        dataset_name="autonomous-agent-v1",
        dataset_sha256="abc",
        base_model="local-base",
        provider="local",
        idempotency_key="key-failed-1",
    )
    app_container.runs.create_or_get(run)
    app_container.runs.update(app_container.runs.get(run.id).advance("failed", error="bad file"))

    handler("fine_tune_done")(
        servicebus_message({"run_id": run.id, "agent_id": AGENT, "state": "failed"}, message_id=run.id)
    )

    assert app_container.models.list(AGENT) == []

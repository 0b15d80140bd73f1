"""``lightning-loop migrate-store``: the Cosmos documents written before the label history are rewritten
(on the emulator, through the CLI as a user runs it); SQLite says it has nothing to rewrite."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lightning.adapters.cosmos.client import find_one
from lightning.adapters.cosmos.episodes import CosmosEpisodeStore
from lightning.bootstrap import cosmos_account
from lightning.cli import main
from lightning.domain.episode import Action, Episode, Label, State
from lightning.ports.episodes import EpisodeQuery

AGENT = "autonomous-agent"


def _episode(i: int, agent_id: str = AGENT) -> Episode:
    return Episode(
        id=f"ep-{agent_id}-{i}",
        agent_id=agent_id,
        state=State(query=f"Analyze customer churn for Q{i % 4 + 1} 2025"),
        action=Action(tool="analyze_churn", arguments={"period": "Q4 2025"}),
    )


def _make_old(store: CosmosEpisodeStore, episode_id: str, agent_id: str) -> None:
    """The item as the code before the label history wrote it: one ``label``, no ``labels``/``review_key``."""
    where = "c.id = @id AND c.agent_id = @agent_id"  # the emulator wants the partition key in the WHERE
    params = [{"name": "@id", "value": episode_id}, {"name": "@agent_id", "value": agent_id}]
    item = find_one(store._c, where, params, partition_key=agent_id)
    assert item is not None
    old = {k: v for k, v in item.items() if not k.startswith("_") and k not in ("labels", "review_key")}
    store._c.replace_item(episode_id, old)


@pytest.mark.cosmos
def test_migrate_store_rewrites_old_cosmos_documents_once(
    cosmos_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = cosmos_settings()
    for name in ("lightning_store", "cosmos_endpoint", "cosmos_key", "cosmos_database"):
        value = getattr(settings, name)
        monkeypatch.setenv(
            name.upper(), value.get_secret_value() if hasattr(value, "get_secret_value") else value
        )
    monkeypatch.setenv("COSMOS_VERIFY_TLS", "false")
    store = CosmosEpisodeStore.in_account(cosmos_account(settings))
    store.add([_episode(i) for i in range(3)] + [_episode(0, agent_id="approval-agent")])
    judged = Label(source="auto", score=0.7, reason="uncertain", evaluator="rubric")
    for episode_id, agent_id in (
        (f"ep-{AGENT}-0", AGENT),
        (f"ep-{AGENT}-1", AGENT),
        ("ep-approval-agent-0", "approval-agent"),
    ):
        store.save_label(episode_id, judged)
        _make_old(store, episode_id, agent_id)
    review = EpisodeQuery(agent_id=AGENT, order="review", human_labeled=False)
    assert f"ep-{AGENT}-0" not in [e.id for e in store.query(review)]  # old items miss the review order

    assert main(["migrate-store", "--agent-id", AGENT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rewritten"] == 2
    assert {f"ep-{AGENT}-0", f"ep-{AGENT}-1"} <= {e.id for e in store.query(review)}
    assert [label.reason for label in store.get(f"ep-{AGENT}-0").labels] == ["uncertain"]

    assert main(["migrate-store"]) == 0
    out = capsys.readouterr().out
    assert "Store: cosmos" in out
    assert "Rewritten: 1" in out  # the other agent's one item, once
    assert main(["migrate-store", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rewritten"] == 0


def test_migrate_store_on_sqlite_has_nothing_to_rewrite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-store"]) == 0
    out = capsys.readouterr().out
    assert "Store: sqlite" in out
    assert "Rewritten: 0" in out
    assert "migrates its schema when it opens" in out

"""The ModelRegistry contract: every implementation (in-memory fake, SQLite; Cosmos later) passes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.bootstrap import cosmos_account
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.model import EvaluationSummary, ModelVersion, PromotionDecision
from lightning.ports.models import ModelRegistry

AGENT = "autonomous-agent"


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    if request.param == "memory":
        from tests.fakes.models import InMemoryModelRegistry

        yield InMemoryModelRegistry()
        return
    if request.param == "cosmos":
        from lightning.adapters.cosmos.models import CosmosModelRegistry

        yield CosmosModelRegistry.in_account(cosmos_account(request.getfixturevalue("cosmos_settings")()))
        return
    from lightning.adapters.sqlite.db import SqliteDatabase
    from lightning.adapters.sqlite.models import SqliteModelRegistry

    db = SqliteDatabase(tmp_path / "models.db")
    yield SqliteModelRegistry(db)
    db.close()


def version(n: int, model: str | None = None, agent: str = AGENT, **extra: object) -> ModelVersion:
    return ModelVersion(
        id=f"{agent}:v{n}",
        agent_id=agent,
        version=n,
        model_name=model or f"ft:base:{agent}:m{n}",
        **extra,  # type: ignore[arg-type]
    )


def test_register_is_idempotent_per_model_name(registry: ModelRegistry) -> None:
    first, created = registry.register(version(1, "ft:a"))
    assert created
    assert first.etag is not None
    again, created_again = registry.register(version(2, "ft:a"))
    assert not created_again
    assert again.id == first.id
    assert again.version == 1
    assert registry.next_version(AGENT) == 2


def test_a_taken_version_number_is_a_conflict(registry: ModelRegistry) -> None:
    registry.register(version(1, "ft:a"))
    with pytest.raises(Conflict):
        registry.register(version(1, "ft:b"))


def test_get_by_id_number_model_and_deployment_name(registry: ModelRegistry) -> None:
    registered, _ = registry.register(version(1, "ft:a"))
    registry.update(registered.model_copy(update={"deployment_name": "autonomous-agent-v1"}))
    for key in ("autonomous-agent:v1", "v1", "1", "ft:a", "autonomous-agent-v1"):
        assert registry.get(AGENT, key).model_name == "ft:a"
    with pytest.raises(NotFound, match="list-models"):
        registry.get(AGENT, "ft:missing")
    with pytest.raises(NotFound):
        registry.get("approval-agent", "ft:a")  # versions belong to one agent


def test_list_newest_first_and_per_agent(registry: ModelRegistry) -> None:
    for n in (1, 2, 3):
        registry.register(version(n))
    registry.register(version(1, agent="approval-agent"))
    assert [v.version for v in registry.list(AGENT)] == [3, 2, 1]
    assert [v.agent_id for v in registry.list("approval-agent")] == ["approval-agent"]
    assert registry.list("nobody") == []
    assert registry.next_version("nobody") == 1


def test_update_round_trips_everything_and_checks_the_etag(registry: ModelRegistry) -> None:
    registered, _ = registry.register(
        version(1, run_id="run-1", dataset_name="ds", dataset_sha256="abc", episode_count=40)
    )
    summary = EvaluationSummary(
        model="ft", examples=10, tool_accuracy=0.9, avg_reward=0.8, details={"by_source": {"validation": 10}}
    )
    decision = PromotionDecision(
        promote=True, reason="better", candidate=summary, baseline=summary, tolerance=0.02
    )
    updated = registry.update(
        registered.model_copy(
            update={
                "status": "deployed",
                "evaluation": summary,
                "decision": decision,
                "previous_env": {"USE_TUNED_MODEL": None},
            }
        )
    )
    assert updated.etag != registered.etag
    loaded = registry.get(AGENT, "v1")
    assert loaded.status == "deployed"
    assert loaded.decision == decision
    assert loaded.evaluation == summary
    assert loaded.previous_env == {"USE_TUNED_MODEL": None}
    assert (loaded.run_id, loaded.dataset_name, loaded.dataset_sha256, loaded.episode_count) == (
        "run-1",
        "ds",
        "abc",
        40,
    )
    with pytest.raises(Conflict, match="read it again"):
        registry.update(registered.model_copy(update={"status": "failed"}))  # stale etag
    with pytest.raises(NotFound):
        registry.update(version(9))


def test_activate_retires_the_previous_active_version(registry: ModelRegistry) -> None:
    for n in (1, 2):
        registry.register(version(n))
    assert registry.active(AGENT) is None
    first = registry.activate(AGENT, f"{AGENT}:v1")
    assert first.active
    assert first.status == "active"
    second = registry.activate(AGENT, "v2")
    assert second.active
    active = registry.active(AGENT)
    assert active is not None
    assert active.version == 2
    old = registry.get(AGENT, "v1")
    assert not old.active
    assert old.status == "retired"
    assert registry.activate(AGENT, "v2").version == 2  # activating the active one changes nothing
    assert [v.active for v in registry.list(AGENT)] == [True, False]


def test_exactly_one_active_version_even_through_update(registry: ModelRegistry) -> None:
    for n in (1, 2):
        registry.register(version(n))
    registry.activate(AGENT, "v1")
    two = registry.get(AGENT, "v2")
    with pytest.raises(Conflict, match="active"):
        registry.update(two.model_copy(update={"active": True, "status": "active"}))
    # Deactivating through update is how a rollback to the base model works.
    one = registry.get(AGENT, "v1")
    registry.update(one.model_copy(update={"active": False, "status": "rolled_back"}))
    assert registry.active(AGENT) is None
    # Other agents have their own active version.
    registry.register(version(1, agent="approval-agent"))
    registry.activate("approval-agent", "v1")
    registry.activate(AGENT, "v2")
    assert registry.active("approval-agent") is not None
    assert registry.active(AGENT).version == 2  # type: ignore[union-attr]


def test_concurrent_activations_leave_exactly_one_active(registry: ModelRegistry) -> None:
    for n in range(1, 9):
        registry.register(version(n))
    errors: list[BaseException] = []

    def activate(n: int) -> None:
        try:
            registry.activate(AGENT, f"v{n}")
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(v.active for v in registry.list(AGENT)) == 1

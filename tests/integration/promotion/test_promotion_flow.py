"""The promotion service on real adapters: SqliteModelRegistry + KubernetesRollout (real ``kubernetes``
client against the apps/v1 stand-in). The ChatModel is the scripted port fake; the model-server path is
covered by tests/e2e/test_cli_models.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.models import SqliteModelRegistry
from lightning.bootstrap import kubernetes_rollout
from lightning.config import Settings
from lightning.domain.messages import FineTuneDone
from lightning.services.promotion import (
    PromotionRequest,
    RollbackRequest,
    promote_and_roll_out,
    promote_model,
    rollback,
)
from tests.standins.kubernetes_api import container_env
from tests.unit.promotion.conftest import AGENT, FT_MODEL, World, make_run
from tests.unit.promotion.conftest import world as world

NS = "mcp-agents"


@pytest.fixture
def real_world(world: World, kubernetes_api: Any, tmp_path: Path) -> World:
    world.models = SqliteModelRegistry(SqliteDatabase(tmp_path / "lightning.db"))  # type: ignore[assignment]
    rollout = kubernetes_rollout(Settings(k8s_api_server=kubernetes_api.url), poll_interval=0.01)
    world.rollout = rollout  # type: ignore[assignment]
    kubernetes_api.add_deployment(NS, AGENT, env={"ENABLE_EPISODE_CAPTURE": "true"})
    return world


def patches(kubernetes_api: Any) -> int:
    return sum(r["method"] == "PATCH" for r in kubernetes_api.requests)


def test_duplicate_completion_message_causes_no_second_rollout(
    real_world: World, kubernetes_api: Any
) -> None:
    real_world.chat.wrong_every["local-base"] = 2
    message = FineTuneDone(run_id="run-1", agent_id=AGENT, state="succeeded", fine_tuned_model=FT_MODEL)

    first = promote_and_roll_out(message, *real_world.args())
    assert first is not None
    assert first.action == "promoted"
    assert patches(kubernetes_api) == 1
    assert container_env(kubernetes_api.deployment(NS, AGENT))["TUNED_MODEL_NAME"] == FT_MODEL

    second = promote_and_roll_out(message, *real_world.args())
    assert second is not None
    assert second.action == "already_active"
    assert patches(kubernetes_api) == 1
    assert len(real_world.models.list(AGENT)) == 1


def test_never_available_keeps_the_previous_version_and_env(real_world: World, kubernetes_api: Any) -> None:
    real_world.runs.create_or_get(make_run("ft:broken", run_id="run-2"))
    assert (
        promote_model(
            PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, mark_active=True, force=True),
            *real_world.args(),
        ).action
        == "promoted"
    )
    kubernetes_api.fail_when_env = {"TUNED_MODEL_NAME": "ft:broken"}

    outcome = promote_model(
        PromotionRequest(agent_id=AGENT, model_name="ft:broken", mark_active=True, force=True),
        *real_world.args(),
    )

    assert outcome.action == "rollout_failed"
    assert outcome.rollout is not None
    assert outcome.rollout.rolled_back
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {
        "ENABLE_EPISODE_CAPTURE": "true",
        "USE_TUNED_MODEL": "true",
        "TUNED_MODEL_NAME": FT_MODEL,
    }
    assert real_world.models.get(AGENT, "ft:broken").status == "failed"
    active = real_world.models.active(AGENT)
    assert active is not None
    assert active.model_name == FT_MODEL


def test_rollback_through_kubernetes(real_world: World, kubernetes_api: Any) -> None:
    promote_model(
        PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, mark_active=True, force=True),
        *real_world.args(),
    )
    ports = real_world.args()
    outcome = rollback(RollbackRequest(agent_id=AGENT, to=None, by="ops"), *ports)
    assert outcome.ok
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {
        "ENABLE_EPISODE_CAPTURE": "true",
        "USE_TUNED_MODEL": "false",
    }
    assert real_world.models.active(AGENT) is None

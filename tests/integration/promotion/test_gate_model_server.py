"""The promotion gate on the local model server: real ``openai`` SDK (OpenAIChatModel), the rubric
evaluator, the reference agent's tools and the SQLite registry. A fine-tuned model beats ``local-base``
and is promoted; a regression (the base model offered as a candidate against the tuned one) is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.openai.chat import OpenAIChatModel
from lightning.adapters.openai.client import OpenAIEndpoint
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.models import SqliteModelRegistry
from lightning.agent.tools import run_tool
from lightning.services.promotion import PromotionRequest, promote_model
from tests.fakes.rollout import RecordingDeployer
from tests.unit.promotion.conftest import AGENT, World, make_run
from tests.unit.promotion.conftest import world as world


@pytest.fixture
def served_world(world: World, model_server: Any, tmp_path: Path) -> World:
    world.chat = OpenAIChatModel.connect(  # type: ignore[assignment]
        OpenAIEndpoint(provider="local", base_url=model_server.base_url)
    )
    world.models = SqliteModelRegistry(SqliteDatabase(tmp_path / "lightning.db"))  # type: ignore[assignment]
    world.deployer = RecordingDeployer(served_as_is=True)
    world.run_tool = run_tool
    return world


def test_the_tuned_model_passes_and_a_regression_is_refused(
    served_world: World, model_server_tuned_model: str
) -> None:
    tuned = model_server_tuned_model
    served_world.runs.create_or_get(make_run(tuned, run_id="run-tuned"))

    promoted = promote_model(
        PromotionRequest(agent_id=AGENT, model_name=tuned, mark_active=True),
        *served_world.args(),
    )

    assert promoted.action == "promoted", promoted.message
    decision = promoted.decision
    assert decision is not None
    assert decision.candidate is not None
    assert decision.baseline is not None
    assert decision.baseline.model == "local-base"
    assert (decision.candidate.judge.tool_accuracy.value or 0) > (
        decision.baseline.judge.tool_accuracy.value or 0
    )
    assert decision.candidate.details["tools_run"] is True
    assert decision.candidate.judge.completeness.value is not None

    # A later "fine-tune" that is no better than the base model must not replace the tuned one.
    served_world.runs.create_or_get(make_run("local-base", run_id="run-regressed"))
    refused = promote_model(
        PromotionRequest(agent_id=AGENT, model_name="local-base", mark_active=True),
        *served_world.args(),
    )

    assert refused.action == "rejected"
    assert refused.decision is not None
    assert refused.decision.baseline is not None
    assert refused.decision.baseline.model == tuned
    # local-base errs (no tool call) where the tuned model does not: refused on observed errors or
    # the judge's figures, whichever the gate reaches first.
    assert (
        "error rate (observed) is significantly worse" in refused.decision.reason
        or "judge-estimated tool accuracy" in refused.decision.reason
    )
    active = served_world.models.active(AGENT)
    assert active is not None
    assert active.model_name == tuned
    assert len(served_world.rollout.calls) == 1

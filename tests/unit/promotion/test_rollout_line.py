"""promote-model's Rollout line: what was set on the Deployment, or why nothing was (never a line that looks
applied when no cluster was patched)."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.adapters.kubernetes.rollout import LocalRollout
from lightning.commands.models import _outcome_lines
from lightning.ports.rollout import RolloutResult
from lightning.services.promotion import PromotionOutcome

ENV = {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:gpt-4o-mini:autonomous-agent:abc123"}
TARGET = "mcp-agents/autonomous-agent"


def rollout_line(action: str, rollout: RolloutResult | None) -> Any:
    outcome = PromotionOutcome.model_validate(
        {"action": action, "message": "m", "rollout": rollout, "env": ENV, "target": TARGET}
    )
    return dict(_outcome_lines(outcome, ENV["TUNED_MODEL_NAME"]))["Rollout"]


def test_no_cluster_says_not_applied() -> None:
    result = LocalRollout().roll_out(namespace="mcp-agents", deployment="autonomous-agent", env=ENV)
    assert result.ok
    assert not result.applied
    assert rollout_line("promoted", result) == (
        "not applied (no Kubernetes cluster configured); the local agent follows the registry"
    )


@pytest.mark.parametrize(
    ("action", "rollout", "line"),
    [
        (
            "promoted",
            RolloutResult(ok=True, message="rolled out", observed_env=ENV),
            f"{TARGET} USE_TUNED_MODEL=true TUNED_MODEL_NAME=ft:gpt-4o-mini:autonomous-agent:abc123",
        ),
        ("promoted", None, "not applied (ROLLOUT_ENABLED=false)"),
        (
            "dry_run",
            None,
            f"would set {TARGET} USE_TUNED_MODEL=true TUNED_MODEL_NAME=ft:gpt-4o-mini:autonomous-agent:abc123",
        ),
    ],
)
def test_a_patched_cluster_shows_the_env_and_the_rest_say_what_did_not_happen(
    action: str, rollout: RolloutResult | None, line: str
) -> None:
    assert rollout_line(action, rollout) == line

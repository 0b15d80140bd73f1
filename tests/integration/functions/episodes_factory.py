"""Realistic episodes for the Functions tests: generated requests with the agent's right tool call."""

from __future__ import annotations

from lightning.agent.queries import generate_queries
from lightning.domain.episode import Action, Episode, Label, State

AGENT = "autonomous-agent"


def captured(n: int, *, seed: int = 3, prefix: str = "fn", agent_id: str = AGENT) -> list[Episode]:
    return [
        Episode(
            id=f"{prefix}-{seed}-{i}",
            agent_id=agent_id,
            state=State(query=sample.query),
            action=Action(tool=sample.tool, arguments=dict(sample.arguments)),
            result={"note": "tool output"},
            model_version="local-base",
        )
        for i, sample in enumerate(generate_queries(n, seed=seed))
    ]


def human_label(score: float = 0.95) -> Label:
    return Label(source="human", score=score, reason="checked by hand", labeled_by="ana")

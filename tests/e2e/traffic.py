"""Episodes as an agent on the base model captures them: mostly the right tool call, some wrong ones."""

from __future__ import annotations

import random

from lightning.agent.queries import generate_queries
from lightning.domain.episode import Action, Episode, State

TOOLS = ["analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast"]


def captured_episodes(
    n: int, *, seed: int, wrong_share: float, prefix: str, agent_id: str = "autonomous-agent"
) -> list[Episode]:
    rng = random.Random(seed)
    episodes = []
    for index, sample in enumerate(generate_queries(n, seed=seed)):
        tool, arguments = sample.tool, dict(sample.arguments)
        if rng.random() < wrong_share:
            tool = rng.choice([name for name in TOOLS if name != sample.tool])
            arguments = {}
        episodes.append(
            Episode(
                id=f"{prefix}-{seed}-{index}",
                agent_id=agent_id,
                state=State(query=sample.query),
                action=Action(tool=tool, arguments=arguments),
                result={"note": "tool output"},
                model_version="local-base",
                latency_ms=12.0,
            )
        )
    return episodes

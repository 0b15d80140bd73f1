"""Episodes for the console and API tests: generated requests, every third answered with a wrong call."""

from __future__ import annotations

from lightning.agent.queries import generate_queries
from lightning.domain.episode import Action, Episode, State

AGENT = "autonomous-agent"
TOOLS = ["analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast"]
DEFAULTS = {
    "analyze_churn": {"period": "last quarter"},
    "sales_report": {"region": "all", "period": "last quarter"},
    "top_products": {"n": 10, "metric": "revenue"},
    "customer_segments": {"risk_level": "all"},
    "sales_forecast": {"horizon_months": 3},
}


def traffic(n: int = 40, *, seed: int = 11) -> list[Episode]:
    """Generated requests; every third one answered with the wrong tool (as an untuned model does)."""
    episodes = []
    for i, sample in enumerate(generate_queries(n, seed=seed, agent_id=AGENT)):
        tool, arguments = sample.tool, dict(sample.arguments)
        if i % 3 == 0:
            tool = TOOLS[(TOOLS.index(sample.tool) + 1) % len(TOOLS)]
            arguments = dict(DEFAULTS[tool])
        episodes.append(
            Episode(
                id=f"api-{i:03d}",
                agent_id=AGENT,
                state=State(query=sample.query, context={"user": "analyst@contoso.com"}),
                action=Action(tool=tool, arguments=arguments),
                result={"ok": True},
                model_version="local-base",
                latency_ms=12.0,
            )
        )
    return episodes

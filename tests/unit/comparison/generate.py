"""Generated episodes with known effects, for the comparison tests (unit and e2e).

``side(...)`` makes ``n`` episodes whose tool accuracy, completeness and error
rate are *exactly* the given shares (the correct/complete/failed episodes are
chosen by a seeded shuffle) and whose rewards and latencies come from seeded
distributions with the given centre — so a test knows the true effect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from lightning.domain.episode import Action, Episode, Label, State

AGENT = "autonomous-agent"
TOOLS = ("query_sales", "get_inventory", "forecast_demand", "summarize_report", "lookup_customer")
DAY1 = datetime(2026, 2, 6, 0, 0, tzinfo=UTC)
DAY2 = datetime(2026, 2, 8, 0, 0, tzinfo=UTC)


def _flags(n: int, share: float, rng: Random) -> list[bool]:
    k = round(n * share)
    flags = [True] * k + [False] * (n - k)
    rng.shuffle(flags)
    return flags


def side(
    n: int,
    *,
    prefix: str,
    start: datetime,
    tool_accuracy: float = 0.7,
    complete_rate: float = 0.8,
    reward_mean: float = 0.6,
    error_rate: float = 0.1,
    latency_ms: float = 800.0,
    labeled: int | None = None,
    model_version: str | None = None,
    seed: int = 1,
    explicit_tool_correct: bool = False,
    tool_info: bool = True,
    agent_id: str = AGENT,
) -> list[Episode]:
    """``n`` episodes one minute apart from ``start``; the first ``labeled`` (default all) carry a label."""
    rng = Random(seed)
    labeled = n if labeled is None else labeled
    correct = _flags(n, tool_accuracy, rng)
    complete = _flags(n, complete_rate, rng)
    errors = _flags(n, error_rate, rng)
    episodes: list[Episode] = []
    for i in range(n):
        expected = TOOLS[i % len(TOOLS)]
        chosen = expected if correct[i] else TOOLS[(i + 1) % len(TOOLS)]
        episode = Episode(
            id=f"{prefix}-{i:05d}",
            agent_id=agent_id,
            timestamp=start + timedelta(minutes=i),
            state=State(query=f"question {i}"),
            action=Action(tool=chosen, arguments={"q": i}),
            result={"rows": i},
            model_version=model_version,
            latency_ms=max(1.0, rng.gauss(latency_ms, latency_ms * 0.25)),
            error="tool failed: timeout" if errors[i] else None,
        )
        if i < labeled:
            reward = min(1.0, max(0.0, rng.gauss(reward_mean, 0.15)))
            label = Label(
                source="auto",
                score=reward,
                reason="generated",
                evaluator="rubric",
                expected_tool=expected if tool_info else None,
                tool_correct=correct[i] if (explicit_tool_correct and tool_info) else None,
                complete=complete[i],
            )
            episode = episode.with_label(label)
        episodes.append(episode)
    return episodes

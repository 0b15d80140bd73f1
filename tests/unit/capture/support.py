"""What the capture tests share: an episode in the workshop's shape, a store that can go down, a quick policy."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lightning.capture import CapturePolicy
from lightning.domain.episode import Action, Episode, State
from lightning.ports.episodes import EpisodeQuery
from tests.fakes.episodes import InMemoryEpisodeStore


class FlakyStore:
    """Wraps a real store; raises while ``down`` (a store outage), counts every add call."""

    def __init__(self, inner: InMemoryEpisodeStore) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0
        self.ids_sent: list[str] = []
        self.lock = threading.Lock()

    def add(self, episodes: Sequence[Episode]) -> int:
        with self.lock:
            self.calls += 1
            if self.down:
                raise ConnectionError("store unreachable")
            self.ids_sent.extend(e.id for e in episodes)
            return self.inner.add(episodes)


def episode(i: int, **changes: object) -> Episode:
    base = Episode(
        id=f"episode-{i:06d}",
        agent_id="autonomous-agent",
        state=State(query="Analyze customer churn for Q4 2025", context={"session": "s1"}),
        action=Action(tool="analyze_churn", arguments={"period": "Q4 2025"}),
        result={"period": "Q4 2025", "churn_rate": 0.05, "at_risk_customers": 38},
        model_version="local-base",
        latency_ms=1.5,
    )
    return base.model_copy(update=changes)


def stored(store: InMemoryEpisodeStore) -> list[Episode]:
    return list(store.query(EpisodeQuery(order="oldest")))


def policy(**overrides: float) -> CapturePolicy:
    values = {"batch_size": 50, "flush_seconds": 0.05, "retry_seconds": 0.05, **overrides}
    return CapturePolicy(**values)  # type: ignore[arg-type]

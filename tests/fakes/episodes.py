"""InMemoryEpisodeStore: the EpisodeStore port in a dict, for unit tests of every area.

Same semantics as the SQLite store (the contract suite runs both): insert-if-absent,
row-version etags, ``Conflict`` on stale etags, label writes appended to the history
(``Episode.with_label``), a monotonic change sequence where an episode changed twice
appears once at its newest change, newest/oldest ordering by (timestamp, id) and the
review order by ``review_priority`` of the effective label, then newest. Thread-safe,
so concurrency tests can use it too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lightning.domain.episode import Episode, Label, review_priority
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import ChangeBatch, EpisodeQuery, LabelWrite, LabelWriteOutcome


@dataclass
class _Row:
    episode: Episode
    version: int
    seq: int


class InMemoryEpisodeStore:
    """An EpisodeStore that forgets everything when the test ends."""

    def __init__(self, episodes: Sequence[Episode] = ()) -> None:
        self._rows: dict[str, _Row] = {}
        self._seq = 0
        self._lock = threading.RLock()
        if episodes:
            self.add(episodes)

    # --- writes ------------------------------------------------------------------------------
    def add(self, episodes: Sequence[Episode]) -> int:
        added = 0
        with self._lock:
            for episode in episodes:
                self._seq += 1  # taken even for ignored ids, like the SQLite store: gaps are fine
                if episode.id in self._rows:
                    continue
                # deep copies in and out: like a real store, no aliasing between caller and stored state
                self._rows[episode.id] = _Row(
                    episode.model_copy(update={"etag": None}, deep=True), 1, self._seq
                )
                added += 1
        return added

    def _write(self, episode_id: str, label: Label, agent_id: str | None, expected_etag: str | None) -> str:
        row = self._rows.get(episode_id)
        if row is None or (agent_id is not None and row.episode.agent_id != agent_id):
            return "missing"
        if expected_etag is not None and expected_etag != str(row.version):
            return "conflict"
        self._seq += 1
        row.episode = row.episode.with_label(label)
        row.version += 1
        row.seq = self._seq
        return "written"

    def save_label(
        self, episode_id: str, label: Label, *, agent_id: str | None = None, expected_etag: str | None = None
    ) -> Episode:
        with self._lock:
            outcome = self._write(episode_id, label, agent_id, expected_etag)
            if outcome == "missing":
                raise NotFound(
                    "episode", episode_id, hint="list episodes with `lightning-loop list-episodes`"
                )
            if outcome == "conflict":
                raise Conflict(
                    f"episode {episode_id!r} changed since it was read (etag {expected_etag} is stale); "
                    "read it again and retry",
                    ident=episode_id,
                )
            return self._out(self._rows[episode_id])

    def save_labels(self, writes: Sequence[LabelWrite]) -> LabelWriteOutcome:
        outcome = LabelWriteOutcome()
        with self._lock:
            for write in writes:
                result = self._write(write.episode_id, write.label, write.agent_id, write.expected_etag)
                getattr(outcome, "conflicts" if result == "conflict" else result).append(write.episode_id)
        return outcome

    # --- reads -------------------------------------------------------------------------------
    @staticmethod
    def _out(row: _Row) -> Episode:
        return row.episode.model_copy(update={"etag": str(row.version)}, deep=True)

    def get(self, episode_id: str, *, agent_id: str | None = None) -> Episode:
        with self._lock:
            row = self._rows.get(episode_id)
            if row is None or (agent_id is not None and row.episode.agent_id != agent_id):
                raise NotFound(
                    "episode", episode_id, hint="list episodes with `lightning-loop list-episodes`"
                )
            return self._out(row)

    def _matching(self, query: EpisodeQuery) -> list[_Row]:
        with self._lock:
            rows = list(self._rows.values())
        selected = []
        for row in rows:
            e = row.episode
            if query.agent_id is not None and e.agent_id != query.agent_id:
                continue
            if query.labeled is not None and e.labeled != query.labeled:
                continue
            if query.human_labeled is not None and e.human_labeled != query.human_labeled:
                continue
            if query.corrected is not None and e.corrected != query.corrected:
                continue
            if query.since is not None and e.timestamp < query.since:
                continue
            if query.until is not None and e.timestamp >= query.until:
                continue
            if query.model_version is not None and e.model_version != query.model_version:
                continue
            if query.min_reward is not None and (e.reward is None or e.reward < query.min_reward):
                continue
            selected.append(row)
        if query.order == "review":
            selected.sort(
                key=lambda r: (review_priority(r.episode.label), r.episode.timestamp, r.episode.id),
                reverse=True,
            )
        else:
            selected.sort(key=lambda r: (r.episode.timestamp, r.episode.id), reverse=query.order == "newest")
        return selected

    def query(self, query: EpisodeQuery) -> Iterator[Episode]:
        rows = self._matching(query)
        if query.limit is not None:
            rows = rows[: query.limit]
        for row in rows:
            yield self._out(row)

    def count(self, query: EpisodeQuery) -> int:
        total = len(self._matching(query))
        return min(total, query.limit) if query.limit is not None else total

    def changes_since(self, cursor: int, *, limit: int = 1000) -> ChangeBatch:
        with self._lock:
            rows = sorted((r for r in self._rows.values() if r.seq > cursor), key=lambda r: r.seq)
            rows = rows[: max(limit, 1)]
            return ChangeBatch(episodes=[self._out(r) for r in rows], cursor=rows[-1].seq if rows else cursor)

    # --- test helpers ------------------------------------------------------------------------
    def all(self) -> list[Episode]:
        with self._lock:
            return [self._out(row) for row in self._rows.values()]

    def __len__(self) -> int:
        return len(self._rows)


def make_episode(
    episode_id: str = "episode-abc123",
    *,
    agent_id: str = "autonomous-agent",
    query: str = "Analyze customer churn for Q4 2025",
    tool: str | None = "analyze_churn",
    arguments: dict[str, object] | None = None,
    result: object = None,
    timestamp: datetime | None = None,
    **fields: object,
) -> Episode:
    """An episode in the workshop's shape; defaults are the workshop's own example (a correct one)."""
    return Episode.model_validate(
        {
            "id": episode_id,
            "agent_id": agent_id,
            "timestamp": timestamp or datetime(2026, 2, 7, 10, 30, tzinfo=UTC),
            "state": {"query": query, "context": {"user": "analyst@contoso.com"}},
            "action": {"tool": tool, "arguments": {"period": "Q4 2025"} if arguments is None else arguments},
            "result": {"period": "Q4 2025", "churn_rate": 0.12, "at_risk_customers": 450}
            if result is None
            else result,
            **fields,
        }
    )

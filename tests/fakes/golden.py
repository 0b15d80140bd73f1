"""InMemoryGoldenStore: the ``GoldenStore`` port in a dict, for service unit tests.

Same semantics as ``SqliteGoldenStore`` and ``CosmosGoldenStore``
(``tests/integration/contracts/test_golden_store_contract.py`` runs all three): one example per
(agent, id), ``put`` replaces (the latest answer wins), listing oldest first by (created_at, id),
etag = row version, ``NotFound`` for a missing example.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lightning.domain.episode import as_utc
from lightning.domain.errors import NotFound
from lightning.domain.golden import GoldenExample


def _not_found(agent_id: str, example_id: str) -> NotFound:
    return NotFound(
        "golden example", example_id, hint=f"see `lightning-loop list-golden --agent-id {agent_id}`"
    )


class InMemoryGoldenStore:
    """A GoldenStore that forgets everything when the test ends."""

    def __init__(self, examples: Sequence[GoldenExample] = ()) -> None:
        self._rows: dict[tuple[str, str], tuple[int, GoldenExample]] = {}
        self._lock = threading.RLock()
        if examples:
            self.put(examples)

    def put(self, examples: Sequence[GoldenExample]) -> int:
        latest = {(e.agent_id, e.id): e for e in examples}  # within one call too, the last one wins
        with self._lock:
            for key, example in latest.items():
                version = self._rows[key][0] + 1 if key in self._rows else 1
                self._rows[key] = (version, example.model_copy(update={"etag": None}, deep=True))
        return len(latest)

    @staticmethod
    def _out(row: tuple[int, GoldenExample]) -> GoldenExample:
        version, example = row
        return example.model_copy(update={"etag": str(version)}, deep=True)

    def get(self, agent_id: str, example_id: str) -> GoldenExample:
        with self._lock:
            row = self._rows.get((agent_id, example_id))
            if row is None:
                raise _not_found(agent_id, example_id)
            return self._out(row)

    def list(self, agent_id: str, *, limit: int | None = None) -> list[GoldenExample]:
        with self._lock:
            rows = [row for (agent, _), row in self._rows.items() if agent == agent_id]
        rows.sort(key=lambda row: (as_utc(row[1].created_at), row[1].id))
        return [self._out(row) for row in rows[:limit]]

    def count(self, agent_id: str) -> int:
        with self._lock:
            return sum(1 for agent, _ in self._rows if agent == agent_id)

    def delete(self, agent_id: str, example_id: str) -> None:
        with self._lock:
            if self._rows.pop((agent_id, example_id), None) is None:
                raise _not_found(agent_id, example_id)

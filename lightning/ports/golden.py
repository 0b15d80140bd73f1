"""GoldenStore: an agent's golden set (SQLite table / Cosmos container ``golden``, partition ``/agent_id``).

Implemented by ``SqliteGoldenStore``, ``CosmosGoldenStore`` and the in-memory fake
(``tests/fakes/golden.py``); ``tests/integration/contracts/test_golden_store_contract.py`` runs on each.
Used by labeling (corrections and confirmations join the set), evaluation, the promotion gate and
the judge report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lightning.domain.golden import GoldenExample


class GoldenStore(Protocol):
    def put(self, examples: Sequence[GoldenExample]) -> int:
        """Insert or replace by id (the latest answer to a request wins); returns how many were written."""
        ...

    def get(self, agent_id: str, example_id: str) -> GoldenExample:
        """``NotFound`` when missing."""
        ...

    def list(self, agent_id: str, *, limit: int | None = None) -> list[GoldenExample]:
        """The agent's examples, oldest first (a stable order: evaluations replay them the same way)."""
        ...

    def count(self, agent_id: str) -> int: ...

    def delete(self, agent_id: str, example_id: str) -> None:
        """Remove one example; ``NotFound`` when missing."""
        ...

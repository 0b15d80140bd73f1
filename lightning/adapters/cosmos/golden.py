"""CosmosGoldenStore: the ``GoldenStore`` port on Cosmos DB container ``golden`` (pk ``/agent_id``).

Built by ``Container.golden`` when ``LIGHTNING_STORE=cosmos``. One item per golden example in the
agent's partition (``id`` = ``golden_id(agent_id, query)``), plus ``order_key`` —
``"<created_at in microseconds, zero-padded>|<id>"`` — the one field the oldest-first listing sorts on
(no composite index needed, ties broken by id like the SQLite store). ``put`` upserts, so the latest
answer to a request wins. Reads by id are queries within the partition (a point read of a missing id
answers 500 on the local emulator, 404 in Azure); ``delete`` of a missing id is a proper 404 on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.adapters.cosmos.client import (
    GOLDEN,
    CosmosAccount,
    container,
    cosmos_errors,
    find_one,
    micros,
    query_pages,
    status_of,
    strip_system,
)
from lightning.domain.episode import as_utc, format_timestamp
from lightning.domain.errors import NotFound
from lightning.domain.golden import GoldenExample


def _not_found(agent_id: str, example_id: str) -> NotFound:
    return NotFound(
        "golden example", example_id, hint=f"see `lightning-loop list-golden --agent-id {agent_id}`"
    )


def golden_item(example: GoldenExample) -> dict[str, Any]:
    """The stored item of ``example``."""
    item = example.model_dump(mode="json")
    created = as_utc(example.created_at)
    item["created_at"] = format_timestamp(created)
    item["order_key"] = f"{micros(created):020d}|{example.id}"
    return item


def _example(item: dict[str, Any]) -> GoldenExample:
    example = GoldenExample.model_validate(strip_system(item))
    return example.model_copy(update={"etag": item.get("_etag")})


class CosmosGoldenStore:
    """GoldenStore over the ``golden`` container."""

    def __init__(self, container_proxy: Any) -> None:
        self._c = container_proxy

    @classmethod
    def in_account(cls, account: CosmosAccount) -> CosmosGoldenStore:
        """The store on the account's ``golden`` container."""
        return cls(container(account, GOLDEN))

    def put(self, examples: Sequence[GoldenExample]) -> int:
        latest = {(e.agent_id, e.id): e for e in examples}  # within one call too, the last one wins
        for example in latest.values():
            with cosmos_errors("golden example", example.id):
                self._c.upsert_item(golden_item(example))
        return len(latest)

    def get(self, agent_id: str, example_id: str) -> GoldenExample:
        with cosmos_errors("golden example", example_id):
            item = find_one(
                self._c,
                "c.agent_id = @agent_id AND c.id = @id",
                [{"name": "@agent_id", "value": agent_id}, {"name": "@id", "value": example_id}],
                partition_key=agent_id,
            )
        if item is None:
            raise _not_found(agent_id, example_id)
        return _example(item)

    def list(self, agent_id: str, *, limit: int | None = None) -> list[GoldenExample]:
        top = f"TOP {int(limit)} " if limit is not None else ""
        with cosmos_errors("golden examples", agent_id):
            items = query_pages(
                self._c,
                f"SELECT {top}* FROM c WHERE c.agent_id = @agent_id ORDER BY c.order_key ASC",
                [{"name": "@agent_id", "value": agent_id}],
                partition_key=agent_id,
            )
            return [_example(item) for item in items]

    def count(self, agent_id: str) -> int:
        with cosmos_errors("golden examples", agent_id):
            return sum(
                int(n)  # type: ignore[call-overload]  # SELECT VALUE yields numbers, not items
                for n in query_pages(
                    self._c,
                    "SELECT VALUE COUNT(1) FROM c WHERE c.agent_id = @agent_id",
                    [{"name": "@agent_id", "value": agent_id}],
                    partition_key=agent_id,
                )
            )

    def delete(self, agent_id: str, example_id: str) -> None:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        with cosmos_errors("golden example", example_id):
            try:
                self._c.delete_item(example_id, partition_key=agent_id)
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 404:
                    raise _not_found(agent_id, example_id) from None
                raise


__all__ = ["CosmosGoldenStore", "golden_item"]

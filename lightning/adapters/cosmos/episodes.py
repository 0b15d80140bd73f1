"""CosmosEpisodeStore: the EpisodeStore on Cosmos DB container ``rl_episodes`` (pk ``/agent_id``).

Built by the Container when ``LIGHTNING_STORE=cosmos``. One item per episode in the workshop's shape
(``Episode.to_document()``: the label history ``labels`` and the effective ``label`` included) plus
fields the queries need, computed with the domain's rules whenever the item is written:

* ``ts_us`` — the timestamp in integer microseconds (exact range filters; ISO strings do not sort
  when some have fractional seconds and some do not);
* ``order_key`` — ``"<ts_us zero-padded>|<id>"``, one sortable field so ``ORDER BY`` needs no composite
  index and ties are broken by id, like the SQLite store;
* ``label_source``, ``human_labeled``, ``corrected`` — of the effective label;
* ``review_priority`` — ``review_priority(effective label)``, and ``review_key`` —
  ``"<priority, 4 decimals>|<order_key>"``, the one field ``order="review"`` sorts on (descending).

Queries stream page by page with continuation tokens (never OFFSET/LIMIT); ``TOP n`` caps a limit.
A label write appends to the history: the item is read, the domain applies the label
(``Episode.with_label``: a person's effective label stays) and the item is replaced on condition that
its ``_etag`` is still the one the caller passed (``IfNotModified``; 412 → ``Conflict``, nothing
written) — or, for an unguarded write, the one just read (a lost race re-reads and retries, so
concurrent appends never drop each other's labels).

Items written before the history existed (only ``label``, no ``labels``/``review_key``) still read —
their history is their one label — and the human/corrected filters treat a missing field as the old
item's state; ``migrate_items()`` rewrites them in today's shape so the review order includes them.
Reads by id are queries (within the partition when ``agent_id`` is known): a point read of a missing
id answers 404 in Azure but 500 on the local emulator, and a query answers both the same way.

``changes_since`` on Cosmos: the Functions host does not use it (the Cosmos DB change-feed trigger
delivers every insert and update, with its own leases). For the local ``run-loop`` pointed at Cosmos it
is a scan over the server's ``_ts`` (seconds): the cursor is the last ``_ts`` returned, and only
seconds at least ``settle_seconds`` in the past are returned, so a write that commits later can never
land behind the cursor (clock skew beyond ``settle_seconds`` is the one way to miss a change). An
episode changed twice appears once, at its newest. Changes therefore show up ``settle_seconds`` late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lightning.adapters.cosmos.client import (
    EPISODES,
    CosmosAccount,
    container,
    cosmos_errors,
    if_match,
    query_pages,
    status_of,
)
from lightning.domain.episode import Episode, Label, as_utc, review_priority
from lightning.domain.errors import Conflict, NotFound
from lightning.ports.episodes import ChangeBatch, EpisodeQuery, LabelWrite, LabelWriteOutcome

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_HINT = "list episodes with `lightning-loop list-episodes`"


def to_micros(value: datetime) -> int:
    return (as_utc(value) - _EPOCH) // _MICRO


_UNGUARDED_ATTEMPTS = 8


def episode_item(episode: Episode) -> dict[str, Any]:
    """The stored item of ``episode``, with the fields queries filter and sort on."""
    item = episode.to_document()
    ts_us = to_micros(episode.timestamp)
    priority = review_priority(episode.label)
    item["ts_us"] = ts_us
    item["order_key"] = f"{ts_us:020d}|{episode.id}"
    item["label_source"] = episode.label.source if episode.label is not None else None
    item["human_labeled"] = episode.human_labeled
    item["corrected"] = episode.corrected
    item["review_priority"] = priority
    item["review_key"] = f"{priority:.4f}|{item['order_key']}"
    return item


def episode_from_item(item: dict[str, Any]) -> Episode:
    episode = Episode.model_validate(item)
    return episode.model_copy(update={"etag": item.get("_etag")})


class CosmosEpisodeStore:
    """EpisodeStore over the ``rl_episodes`` container."""

    def __init__(
        self,
        container_proxy: Any,
        *,
        page_size: int = 200,
        settle_seconds: int = 5,
        write_concurrency: int = 8,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._c = container_proxy
        self._write_concurrency = write_concurrency
        self._page_size = page_size
        self._settle_seconds = settle_seconds
        self._now = now or (lambda: datetime.now(UTC))

    @classmethod
    def in_account(cls, account: CosmosAccount) -> CosmosEpisodeStore:
        """The store on the account's ``rl_episodes`` container."""
        return cls(container(account, EPISODES))

    # --- writes ------------------------------------------------------------------------------
    def add(self, episodes: Sequence[Episode]) -> int:
        """Insert-if-absent, one ``create_item`` each (an existing id answers 409 and is left alone),
        ``write_concurrency`` at a time: Cosmos has no cross-partition batch, and capture flushes
        hundreds of episodes at once."""
        unique: dict[str, Episode] = {}
        for episode in episodes:
            unique.setdefault(episode.id, episode)  # the first of an id wins, like a replay
        batch = list(unique.values())
        if len(batch) <= 1 or self._write_concurrency <= 1:
            return sum(self._create(episode) for episode in batch)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self._write_concurrency, len(batch))) as pool:
            return sum(pool.map(self._create, batch))

    def _create(self, episode: Episode) -> int:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        with cosmos_errors("episode", episode.id):
            try:
                self._c.create_item(episode_item(episode))
            except CosmosHttpResponseError as exc:
                if status_of(exc) != 409:
                    raise
                return 0
        return 1

    def _find(self, episode_id: str, agent_id: str | None) -> dict[str, Any] | None:
        with cosmos_errors("episode", episode_id):
            sql = "SELECT * FROM c WHERE c.id = @id"
            params = [{"name": "@id", "value": episode_id}]
            if agent_id is not None:
                # Naming the partition key in WHERE too keeps the query single-partition everywhere.
                sql += " AND c.agent_id = @agent_id"
                params.append({"name": "@agent_id", "value": agent_id})
            items = query_pages(self._c, sql, params, partition_key=agent_id, page_size=2)
            return next(items, None)

    def _append_label(
        self, episode_id: str, label: Label, agent_id: str | None, expected_etag: str | None
    ) -> dict[str, Any] | str:
        """The replaced item, or ``"missing"`` / ``"conflict"``."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        attempts = 1 if expected_etag is not None else _UNGUARDED_ATTEMPTS
        for _attempt in range(attempts):
            found = self._find(episode_id, agent_id)
            if found is None:
                return "missing"
            guard = expected_etag if expected_etag is not None else found.get("_etag")
            updated = episode_item(episode_from_item(found).with_label(label))
            with cosmos_errors("episode", episode_id):
                try:
                    replaced: dict[str, Any] = self._c.replace_item(episode_id, updated, **if_match(guard))
                    return replaced
                except CosmosHttpResponseError as exc:
                    if status_of(exc) == 404:
                        return "missing"
                    if status_of(exc) != 412:
                        raise
        return "conflict"

    def save_label(
        self, episode_id: str, label: Label, *, agent_id: str | None = None, expected_etag: str | None = None
    ) -> Episode:
        outcome = self._append_label(episode_id, label, agent_id, expected_etag)
        if outcome == "missing":
            raise NotFound("episode", episode_id, hint=_HINT)
        if outcome == "conflict":
            if expected_etag is None:
                raise Conflict(f"episode {episode_id!r} keeps changing; try again", ident=episode_id)
            raise Conflict(
                f"episode {episode_id!r} changed since it was read (etag {expected_etag} is stale); "
                "read it again and retry",
                ident=episode_id,
            )
        assert isinstance(outcome, dict)
        return episode_from_item(outcome)

    def save_labels(self, writes: Sequence[LabelWrite]) -> LabelWriteOutcome:
        """One guarded replace per write (Cosmos has no cross-partition transaction); conflicts are
        reported."""
        result = LabelWriteOutcome()
        for write in writes:
            outcome = self._append_label(write.episode_id, write.label, write.agent_id, write.expected_etag)
            if outcome == "missing":
                result.missing.append(write.episode_id)
            elif outcome == "conflict":
                result.conflicts.append(write.episode_id)
            else:
                result.written.append(write.episode_id)
        return result

    def migrate_items(self, *, agent_id: str | None = None, batch_size: int = 200) -> int:
        """Rewrite items stored before the label history (no ``review_key``) in today's shape; returns how
        many were rewritten. Idempotent and safe beside live writers: each replace is guarded by the
        item's ``_etag``, and an item changed meanwhile is left to the writer that changed it."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        where = "NOT IS_DEFINED(c.review_key)"
        params: list[dict[str, Any]] = []
        if agent_id is not None:
            where += " AND c.agent_id = @agent_id"
            params.append({"name": "@agent_id", "value": agent_id})
        seen: set[tuple[str, str]] = set()
        rewritten = 0
        while True:
            with cosmos_errors("episodes", agent_id or "*"):
                items = list(
                    query_pages(
                        self._c,
                        f"SELECT TOP {int(batch_size)} * FROM c WHERE {where}",
                        params,
                        partition_key=agent_id,
                    )
                )
            fresh = [item for item in items if (item["agent_id"], item["id"]) not in seen]
            if not fresh:
                return rewritten
            for item in fresh:
                seen.add((item["agent_id"], item["id"]))
                with cosmos_errors("episode", item["id"]):
                    try:
                        self._c.replace_item(
                            item["id"], episode_item(episode_from_item(item)), **if_match(item.get("_etag"))
                        )
                    except CosmosHttpResponseError as exc:
                        if status_of(exc) not in (404, 412):
                            raise
                        continue
                rewritten += 1

    # --- reads -------------------------------------------------------------------------------
    def get(self, episode_id: str, *, agent_id: str | None = None) -> Episode:
        item = self._find(episode_id, agent_id)
        if item is None:
            raise NotFound("episode", episode_id, hint=_HINT)
        return episode_from_item(item)

    @staticmethod
    def _where(query: EpisodeQuery) -> tuple[str, list[dict[str, Any]]]:
        clauses: list[str] = []
        params: list[dict[str, Any]] = []

        def add(clause: str, name: str, value: Any) -> None:
            clauses.append(clause)
            params.append({"name": name, "value": value})

        if query.agent_id is not None:
            add("c.agent_id = @agent_id", "@agent_id", query.agent_id)
        if query.labeled is not None:
            add("c.labeled = @labeled", "@labeled", query.labeled)
        # label_source is on old items too (human_labeled is not): a missing or null one is "not human".
        if query.human_labeled is True:
            clauses.append("c.label_source = 'human'")
        elif query.human_labeled is False:
            clauses.append(
                "(NOT IS_DEFINED(c.label_source) OR IS_NULL(c.label_source) OR c.label_source != 'human')"
            )
        # Old items predate corrections: a missing ``corrected`` is false.
        if query.corrected is True:
            clauses.append("c.corrected = true")
        elif query.corrected is False:
            clauses.append("(NOT IS_DEFINED(c.corrected) OR c.corrected = false)")
        if query.since is not None:
            add("c.ts_us >= @since", "@since", to_micros(query.since))
        if query.until is not None:
            add("c.ts_us < @until", "@until", to_micros(query.until))
        if query.model_version is not None:
            add("c.model_version = @model_version", "@model_version", query.model_version)
        if query.min_reward is not None:
            add("c.reward >= @min_reward", "@min_reward", query.min_reward)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query(self, query: EpisodeQuery) -> Iterator[Episode]:
        where, params = self._where(query)
        top = f"TOP {int(query.limit)} " if query.limit is not None else ""
        if query.order == "review":
            order_by = "c.review_key DESC"
        else:
            order_by = f"c.order_key {'DESC' if query.order == 'newest' else 'ASC'}"
        sql = f"SELECT {top}* FROM c{where} ORDER BY {order_by}"
        with cosmos_errors("episodes", query.agent_id or "*"):
            for item in query_pages(
                self._c, sql, params, partition_key=query.agent_id, page_size=self._page_size
            ):
                yield episode_from_item(item)

    def count(self, query: EpisodeQuery) -> int:
        where, params = self._where(query)
        with cosmos_errors("episodes", query.agent_id or "*"):
            total = sum(
                int(n)  # type: ignore[call-overload]  # SELECT VALUE yields numbers, not items
                for n in query_pages(
                    self._c, f"SELECT VALUE COUNT(1) FROM c{where}", params, partition_key=query.agent_id
                )
            )
        return min(total, query.limit) if query.limit is not None else total

    def changes_since(self, cursor: int, *, limit: int = 1000) -> ChangeBatch:
        limit = max(limit, 1)
        horizon = int(self._now().timestamp()) - self._settle_seconds
        params = [
            {"name": "@cursor", "value": cursor},
            {"name": "@horizon", "value": horizon},
        ]
        with cosmos_errors("episode changes", str(cursor)):
            items = list(
                query_pages(
                    self._c,
                    f"SELECT TOP {limit} * FROM c WHERE c._ts > @cursor AND c._ts <= @horizon ORDER BY c._ts",
                    params,
                )
            )
            if len(items) == limit:
                last = int(items[-1]["_ts"])
                earlier = [i for i in items if int(i["_ts"]) < last]
                if earlier:
                    # Never split one second across batches: its rest comes next time.
                    items = earlier
                else:
                    # One second holds more than ``limit`` changes: return all of it.
                    items = list(
                        query_pages(
                            self._c,
                            "SELECT * FROM c WHERE c._ts = @ts",
                            [{"name": "@ts", "value": last}],
                        )
                    )
        if not items:
            return ChangeBatch(episodes=[], cursor=cursor)
        return ChangeBatch(
            episodes=[episode_from_item(i) for i in items], cursor=max(int(i["_ts"]) for i in items)
        )


__all__ = ["CosmosEpisodeStore", "episode_from_item", "episode_item"]

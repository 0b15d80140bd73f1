"""EpisodeStore: where episodes live (SQLite by default, Cosmos DB ``rl_episodes`` in Azure)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import Episode, Label


class EpisodeQuery(BaseModel):
    """Filters for listing episodes. ``None`` means "either" for every flag."""

    model_config = ConfigDict(frozen=True)

    agent_id: str | None = None
    labeled: bool | None = None
    human_labeled: bool | None = Field(default=None, description="The effective label is a person's.")
    corrected: bool | None = Field(
        default=None, description="A person corrected the call (Episode.corrected)."
    )
    since: datetime | None = Field(default=None, description="timestamp >= since")
    until: datetime | None = Field(default=None, description="timestamp < until")
    model_version: str | None = None
    min_reward: float | None = None
    limit: int | None = Field(default=None, ge=1)
    order: Literal[
        "newest",  # timestamp descending
        "oldest",  # timestamp ascending
        "review",  # review_priority(label) descending, then newest (the review queue's candidates)
    ] = "newest"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelWrite:
    """One label to write, guarded by the etag the writer last saw (None: write unconditionally).

    A plain value, not a pydantic model: it is only built by our services from parts that are validated
    already (the stored episode's id and etag, a ``Label``), one per labeled episode, where validating
    them again cost microseconds each. Writes may share one ``Label`` object (the labeler gives episodes
    with the same verdict the same label); each episode gets it, and adapters may serialize it once.
    """

    episode_id: str
    agent_id: str
    label: Label
    expected_etag: str | None = None


class LabelWriteOutcome(BaseModel):
    written: list[str] = Field(default_factory=list, description="Episode ids written.")
    conflicts: list[str] = Field(default_factory=list, description="Episode ids whose etag was stale.")
    missing: list[str] = Field(default_factory=list, description="Episode ids that do not exist.")


class ChangeBatch(BaseModel):
    """Episodes changed after a cursor, oldest change first, and the cursor to pass next time."""

    episodes: list[Episode]
    cursor: int


class EpisodeStore(Protocol):
    def add(self, episodes: Sequence[Episode]) -> int:
        """Insert episodes whose id is new; existing ids are left as they are. Returns how many were new."""
        ...

    def get(self, episode_id: str, *, agent_id: str | None = None) -> Episode:
        """The episode with its current etag, or ``NotFound``."""
        ...

    def query(self, query: EpisodeQuery) -> Iterator[Episode]:
        """Stream episodes matching ``query`` (never loads everything at once)."""
        ...

    def count(self, query: EpisodeQuery) -> int: ...

    def save_label(
        self, episode_id: str, label: Label, *, agent_id: str | None = None, expected_etag: str | None = None
    ) -> Episode:
        """Append a label to the episode's history (``Episode.with_label``: the effective label stays a
        person's once one exists). ``Conflict`` when ``expected_etag`` is stale — checked by the store's
        own conditional write, never read-then-write — ``NotFound`` when missing."""
        ...

    def save_labels(self, writes: Sequence[LabelWrite]) -> LabelWriteOutcome:
        """Append many labels at once (one transaction where the backend has them); never raises on
        conflicts. Backends keep ``review_priority(effective label)`` with each write for ``order="review"``."""
        ...

    def changes_since(self, cursor: int, *, limit: int = 1000) -> ChangeBatch:
        """Episodes inserted or changed after ``cursor`` (the local stand-in for the Cosmos change feed)."""
        ...


@runtime_checkable
class MigratesItems(Protocol):
    """A store whose documents from before the label history are rewritten on request (Cosmos DB: old
    items still read, but only rewritten ones take their place in the review order). Stores that migrate
    when they open (SQLite) or hold nothing old (memory) do not implement it."""

    def migrate_items(self, *, agent_id: str | None = None) -> int:
        """Rewrite the old documents (of ``agent_id``, else all) in today's shape; returns how many."""
        ...

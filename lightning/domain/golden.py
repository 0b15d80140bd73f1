"""Golden sets: requests with the call that is known to be right, per agent.

Ground truth for the promotion gate (``lightning/services/promotion.py``), ``evaluate --golden`` and
the judge report (``lightning/services/calibration.py``). Examples come from a file a person wrote
(``import-golden``), or from episodes a person corrected or confirmed. One example per agent and
normalized request: the id is a hash of both, so importing the same file twice, or correcting the same
request again, replaces the answer instead of adding a second one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow
from lightning.domain.finetune_format import normalize_query

GoldenSource = Literal[
    "file",  # imported with import-golden
    "correction",  # a person corrected an episode's call
    "confirmation",  # a person confirmed an episode's call
]


def golden_id(agent_id: str, query: str) -> str:
    """Stable id of an agent's golden answer to ``query`` (case, spacing and punctuation ignored)."""
    digest = hashlib.sha256(f"{agent_id}\x00{normalize_query(query)}".encode()).hexdigest()
    return f"golden-{digest[:24]}"


class GoldenExample(BaseModel):
    """A request and the call that answers it, known to be right."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="golden_id(agent_id, query).")
    agent_id: str = Field(min_length=1, max_length=128)
    query: str = Field(min_length=1, max_length=20_000)
    context: dict[str, Any] = Field(default_factory=dict, description="Caller context, as an episode has.")
    expected_tool: str = Field(min_length=1)
    expected_arguments: dict[str, Any] = Field(default_factory=dict)
    source: GoldenSource = "file"
    episode_id: str | None = Field(
        default=None, description="The episode a correction/confirmation came from."
    )
    created_by: str = Field(default="unknown", description="Who gave the answer.")
    created_at: datetime = Field(default_factory=utcnow)
    etag: str | None = Field(default=None, exclude=True)

    @classmethod
    def of(cls, *, agent_id: str, query: str, **fields: Any) -> GoldenExample:
        return cls(id=golden_id(agent_id, query), agent_id=agent_id, query=query, **fields)

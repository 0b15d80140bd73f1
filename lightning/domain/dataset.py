"""Dataset manifests: what a built fine-tuning dataset holds and where its files are.

A dataset name is immutable: one name maps to one ``content_sha256``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import utcnow

DatasetFormat = Literal[
    "jsonl",  # chat fine-tuning examples with native tool calls (supervised)
    "dpo",  # preference pairs: preferred vs non-preferred response for the same request
]

Split = Literal["train", "validation"]


class DatasetFile(BaseModel):
    """One JSONL file of a dataset, as stored in the blob store."""

    model_config = ConfigDict(frozen=True)

    split: Split
    uri: str = Field(description="Blob store URI (file:// or https://) of the JSONL file.")
    sha256: str
    examples: int
    bytes: int
    tokens: int = Field(description="Billed tokens of the file (o200k_base with chat overhead).")


class RewardStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    avg: float
    min: float
    max: float


class DatasetManifest(BaseModel):
    """Everything needed to trust, reproduce and train on a dataset."""

    name: str
    agent_id: str
    format: DatasetFormat = "jsonl"
    episode_ids: list[str] = Field(default_factory=list, description="Training split episode ids.")
    validation_episode_ids: list[str] = Field(default_factory=list)
    filters: dict[str, Any] = Field(default_factory=dict, description="The filters the build used.")
    files: list[DatasetFile] = Field(default_factory=list)
    content_sha256: str = Field(description="Hash over the files' hashes: the dataset's identity.")
    reward: RewardStats
    token_count: int
    tool_distribution: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict, description="Episodes dropped, by reason.")
    redactions: dict[str, int] = Field(
        default_factory=dict, description="Secrets and personal data redacted, by kind."
    )
    truncated: int = Field(default=0, description="Tool results cut to the length cap.")
    corrected_examples: int = Field(
        default=0, description="Examples teaching a call a person gave instead of the agent's."
    )
    confirmed_examples: int = Field(default=0, description="Examples of calls a person confirmed.")
    notes: list[str] = Field(
        default_factory=list, description="Decisions the build took that a reader should know about."
    )
    system_prompt: str = ""
    tools: list[dict[str, Any]] = Field(default_factory=list, description="The agent's tool schemas.")
    base_model: str | None = Field(default=None, description="Base model the token limits were checked for.")
    created_at: datetime = Field(default_factory=utcnow)
    etag: str | None = Field(default=None, exclude=True)

    @property
    def episode_count(self) -> int:
        return len(self.episode_ids) + len(self.validation_episode_ids)

    def examples(self, split: Split) -> int:
        found = self.file(split)
        return found.examples if found is not None else 0

    def file(self, split: Split) -> DatasetFile | None:
        return next((f for f in self.files if f.split == split), None)

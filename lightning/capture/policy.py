"""How capture batches, truncates and retries: ``CapturePolicy``.

``CAPTURE_*`` settings become a policy in ``lightning.bootstrap_agent.capture_policy``, with the other policies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CapturePolicy"]


class CapturePolicy(BaseModel):
    """How capture batches, truncates and retries (from ``CAPTURE_*`` settings)."""

    model_config = ConfigDict(frozen=True)

    batch_size: int = Field(
        default=500, ge=1, description="Episodes per store write (up to 8x that while a backlog drains)."
    )
    flush_seconds: float = Field(default=0.5, gt=0, description="Longest an episode waits for its batch.")
    max_result_chars: int = Field(default=8000, ge=100, description="Results longer than this (JSON) shrink.")
    max_text_chars: int = Field(
        default=8000, ge=100, description="Query/response/error longer than this are cut."
    )
    max_queue: int = Field(
        default=100_000, ge=1, description="Episodes held in memory before spooling directly."
    )
    retry_seconds: float = Field(default=2.0, gt=0, description="Pause between store retries while spooling.")

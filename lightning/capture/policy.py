"""How capture batches, truncates and retries: ``CapturePolicy``, and ``capture_policy`` from settings.

The one place ``CAPTURE_*`` settings become a policy; ``EpisodeCapture.from_settings`` and the
container call ``capture_policy(settings)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from lightning.config import Settings

__all__ = ["CapturePolicy", "capture_policy"]


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


def capture_policy(settings: Settings) -> CapturePolicy:
    """The capture policy the settings ask for (``CAPTURE_BATCH_SIZE``, ``CAPTURE_FLUSH_SECONDS``,
    ``CAPTURE_MAX_RESULT_CHARS``, which also caps query, response and error)."""
    return CapturePolicy(
        batch_size=settings.capture_batch_size,
        flush_seconds=settings.capture_flush_seconds,
        max_result_chars=settings.capture_max_result_chars,
        max_text_chars=settings.capture_max_result_chars,
    )

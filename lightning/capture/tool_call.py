"""``ToolCall``: one tool call being captured, filled in by the agent and turned into an ``Episode``.

Created by ``EpisodeCapture.tool_call``; ``new_episode_id`` gives the stable id it carries.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lightning.domain.episode import Action, Episode, State, utcnow

__all__ = ["ToolCall", "new_episode_id"]


def new_episode_id() -> str:
    """A fresh, stable episode id (fixed at capture time; replays never change it)."""
    return f"episode-{uuid.uuid4().hex}"


class ToolCall:
    """One tool call being captured; fill in what the agent did, the context manager records it."""

    def __init__(
        self,
        *,
        agent_id: str,
        query: str,
        context: dict[str, Any] | None = None,
        model_version: str | None = None,
        episode_id: str | None = None,
    ) -> None:
        self.id = episode_id or new_episode_id()
        self.agent_id = agent_id
        self.query = query
        self.context = dict(context or {})
        self.model_version = model_version
        self.tool: str | None = None
        self.arguments: dict[str, Any] = {}
        self.result: Any = None
        self.response: str | None = None
        self.error: str | None = None
        self.timestamp = utcnow()
        self._started = time.perf_counter()
        self.latency_ms: float | None = None

    def action(self, tool: str | None, arguments: dict[str, Any] | None = None) -> None:
        self.tool = tool
        self.arguments = dict(arguments or {})

    def finish(self) -> None:
        if self.latency_ms is None:
            self.latency_ms = round((time.perf_counter() - self._started) * 1000.0, 3)

    def episode(self) -> Episode:
        self.finish()
        return Episode(
            id=self.id,
            agent_id=self.agent_id,
            timestamp=self.timestamp,
            state=State(query=self.query, context=self.context),
            action=Action(tool=self.tool, arguments=self.arguments),
            result=self.result,
            response=self.response,
            model_version=self.model_version,
            latency_ms=self.latency_ms,
            error=self.error,
        )

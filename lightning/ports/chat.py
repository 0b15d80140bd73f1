"""ChatModel: ask a model to choose a tool for a request (Azure OpenAI, OpenAI or the local server).

``choose_tool`` is one request (the agent); ``choose_tools`` is many, as concurrently as the adapter
allows (a bounded pool), within a time limit (the promotion gate's replay). Services never run threads
themselves: concurrency lives in the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field


class ToolCallChoice(BaseModel):
    """The model's answer: a tool call (or plain content when it chose none)."""

    model: str = Field(description="The model (or deployment) that answered.")
    tool: str | None
    arguments: dict[str, Any] = Field(default_factory=dict)
    content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


ChoiceOutcome = ToolCallChoice | Exception | None
"""One query's outcome in ``choose_tools``: the answer, the error that call raised (returned, not
raised), or ``None`` when it was never asked because the time limit had passed."""


class ChatModel(Protocol):
    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice: ...

    def choose_tools(
        self,
        queries: Sequence[str],
        *,
        model: str,
        system_prompt: str,
        tools: list[dict[str, Any]],
        time_limit: float | None = None,
    ) -> list[ChoiceOutcome]:
        """``choose_tool`` for each query, in order, with bounded concurrency; one outcome per query.

        A call's failure is its outcome (a ``LightningError``), never raised. No call starts once
        ``time_limit`` seconds have passed since this one began: those queries answer ``None``."""
        ...

"""ChatModel: ask a model to choose a tool for a request (Azure OpenAI, OpenAI or the local server)."""

from __future__ import annotations

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


class ChatModel(Protocol):
    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice: ...

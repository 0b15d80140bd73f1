"""Agent definitions: an agent's id, system prompt, tool schemas and labeling rubric.

Definitions are files (``lightning/agents/*.yaml``) read by the registry
adapter; the dataset builder, the evaluators, the reference agent and the
local model server all work from the same definition.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ToolSpec(BaseModel):
    """One tool as the model sees it (OpenAI function-tool schema)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments (type: object).")

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    def openai_tool(self) -> dict[str, Any]:
        """The ``tools`` entry of a chat-completions request or fine-tuning example."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class RubricRule(BaseModel):
    """Which requests a tool fits and what a complete answer from it holds."""

    model_config = ConfigDict(frozen=True)

    tool: str
    intents: list[str] = Field(
        description="Lower-case words or phrases that signal this tool fits the request."
    )
    required_arguments: list[str] = Field(default_factory=list)
    result_keys: list[str] = Field(default_factory=list, description="Keys a complete result contains.")


class Rubric(BaseModel):
    """The deterministic labeling rubric of one agent."""

    model_config = ConfigDict(frozen=True)

    rules: list[RubricRule]

    def rule_for(self, tool: str | None) -> RubricRule | None:
        return next((rule for rule in self.rules if rule.tool == tool), None)


class AgentDefinition(BaseModel):
    """An agent as registered: identity, prompt, tools, rubric."""

    model_config = ConfigDict(frozen=True)

    id: str
    description: str = ""
    namespace: str = "mcp-agents"
    deployment: str | None = Field(
        default=None, description="Kubernetes Deployment name (defaults to the id)."
    )
    system_prompt: str
    tools: list[ToolSpec]
    rubric: Rubric

    @model_validator(mode="after")
    def _rubric_names_known_tools(self) -> AgentDefinition:
        names = {tool.name for tool in self.tools}
        unknown = [rule.tool for rule in self.rubric.rules if rule.tool not in names]
        if unknown:
            raise ValueError(f"rubric names tools the agent does not have: {', '.join(unknown)}")
        return self

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.id

    @property
    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def tool(self, name: str) -> ToolSpec | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    def openai_tools(self) -> list[dict[str, Any]]:
        return [tool.openai_tool() for tool in self.tools]

"""Agent definitions: an agent's id, system prompt, tool schemas and labeling rubric.

Definitions are files (``lightning/agents/*.yaml``) read by the registry
adapter; the dataset builder, the evaluators, the reference agent and the
local model server all work from the same definition.
"""

from __future__ import annotations

from typing import Any, Literal

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


ArgumentReader = Literal[
    "period",  # a period the request names: "Q4 2025", "H1 2026", "March 2025", "2025", "last quarter", "ytd"
    "months",  # a horizon ahead in months: "next month" 1, "next quarter" 3, "half a year" 6, "2 years" 24
    "count",  # how many: "top 5", "the 12 best", "twenty products", "#1" / "single" 1 (periods ignored)
    "choice",  # an enum value named by the phrases in ``values`` (or by the value itself as a word)
]


class ArgumentRule(BaseModel):
    """How the rubric reads one argument's value from a request, to check the call against it."""

    model_config = ConfigDict(frozen=True)

    extract: ArgumentReader = Field(description="How a stated value is read from the request.")
    values: dict[str, list[str]] = Field(
        default_factory=dict,
        description="For 'choice': phrases that state each value ('western' → west). The value itself "
        "always counts as a phrase for itself.",
    )
    default: Any = Field(
        default=None,
        description="The value a call must use when the request states none (the agent's convention); "
        "None: any valid value is fine when nothing is stated.",
    )
    evidence: float = Field(
        default=0.0,
        ge=0.0,
        description="Intent weight a stated value adds to this tool's match ('the next 6 months' is "
        "evidence of a forecast).",
    )
    decisive_evidence: bool = Field(
        default=False, description="Whether that weight counts as decisive (see ``RubricRule.decisive``)."
    )


class RubricRule(BaseModel):
    """Which requests a tool fits and what a complete answer from it holds.

    Intent phrases are matched as whole words on the normalized request (lower case, punctuation
    as spaces). A phrase may end a word with ``*`` ("cancel*" matches "cancelled") and use ``#``
    for a number ("next # months" matches "next 6 months" and "next six months").
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    intents: list[str] = Field(
        description="Lower-case words or phrases that signal this tool fits the request (generic)."
    )
    decisive: list[str] = Field(
        default_factory=list,
        description="Phrases that decide the tool: a rule with a decisive match outranks every rule "
        "with only generic matches ('forecast' beats 'sales for the'); among decisive matches the "
        "heavier wins.",
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weight of an intent or decisive phrase (default: its number of words).",
    )
    required_arguments: list[str] = Field(default_factory=list)
    result_keys: list[str] = Field(default_factory=list, description="Keys a complete result contains.")
    arguments: dict[str, ArgumentRule] = Field(
        default_factory=dict,
        description="Argument checks: a value the request states must be the call's value.",
    )


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
        for rule in self.rubric.rules:
            tool = self.tool(rule.tool)
            properties = tool.parameters.get("properties", {}) if tool is not None else {}
            strange = [name for name in rule.arguments if name not in properties]
            if strange:
                raise ValueError(f"rubric checks arguments {rule.tool} does not have: {', '.join(strange)}")
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

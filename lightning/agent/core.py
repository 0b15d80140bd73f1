"""The analytics agent itself: query → model chooses a tool → tool runs → answer (+ episode, + spans).

``AnalyticsAgent.analyze(query)`` is what the MCP tool ``analyze_query`` runs
(on a worker thread). It asks the configured model through the ``ChatModel``
port, with the agent's registered system prompt and tool schemas, to choose one
of the five tools; runs that tool over the bundled data; and returns an
``AgentAnswer`` carrying ``model_version``. Every call is captured as one
episode when capture is on — including failures (the model unreachable, no tool
chosen, invalid arguments), which carry ``error`` instead of a result.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel, Field

from lightning.agent.models import ModelSelector
from lightning.agent.sample_data import SampleData, load_sample_data
from lightning.agent.telemetry import annotate, tracer
from lightning.agent.tools import run_tool, summarize
from lightning.capture import EpisodeCapture
from lightning.domain.agent import AgentDefinition
from lightning.domain.errors import InvalidInput, LightningError
from lightning.ports.chat import ChatModel

logger = logging.getLogger(__name__)


class AgentAnswer(BaseModel):
    """What ``analyze_query`` returns (as JSON text and structured content)."""

    agent_id: str
    episode_id: str | None = Field(description="The captured episode's id (None when capture is off).")
    model_version: str = Field(description="The model or deployment that chose the tool.")
    query: str
    tool: str | None
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    response: str | None = None
    latency_ms: float
    error: str | None = None


class AnalyticsAgent:
    """One agent (``autonomous-agent`` or ``approval-agent``) answering over the sample data."""

    def __init__(
        self,
        *,
        definition: AgentDefinition,
        chat: ChatModel,
        models: ModelSelector,
        capture: EpisodeCapture | None = None,
        data: SampleData | None = None,
    ) -> None:
        self.definition = definition
        self.chat = chat
        self.models = models
        self.capture = capture or EpisodeCapture.disabled()
        self._data = data
        self._tools = definition.openai_tools()

    @property
    def agent_id(self) -> str:
        return self.definition.id

    @property
    def data(self) -> SampleData:
        if self._data is None:
            self._data = load_sample_data()
        return self._data

    def analyze(self, query: str, *, context: dict[str, Any] | None = None) -> AgentAnswer:
        """Answer one request; never raises for a model or tool failure (the answer carries ``error``)."""
        model = self.models.current()
        request_span = trace.get_current_span()
        with (
            tracer().start_as_current_span("analyze_query") as span,
            self.capture.tool_call(
                agent_id=self.agent_id, query=query, context=context, model_version=model
            ) as call,
        ):
            episode_id = call.id if self.capture.enabled else None
            for target in (request_span, span):
                annotate(target, agent_id=self.agent_id, model_version=model, episode_id=episode_id)
            try:
                choice = self.chat.choose_tool(
                    model=model, system_prompt=self.definition.system_prompt, tools=self._tools, query=query
                )
                if choice.tool is None:
                    call.response = choice.content
                    raise InvalidInput(f"the model {model!r} answered without calling a tool")
                call.action(choice.tool, choice.arguments)
                # On the request and the tool span only: one row per tool call carries ``tool``.
                annotate(request_span, tool=choice.tool)
                with tracer().start_as_current_span(f"tool {choice.tool}") as tool_span:
                    annotate(
                        tool_span,
                        agent_id=self.agent_id,
                        model_version=model,
                        tool=choice.tool,
                        episode_id=episode_id,
                    )
                    call.result = run_tool(choice.tool, choice.arguments, self.data)
                call.response = summarize(choice.tool, call.result)
            except LightningError as exc:
                call.error = str(exc)
            except Exception as exc:  # a bug must not take the agent down; it is captured and logged
                logger.exception("agent %s failed on a request", self.agent_id)
                call.error = f"internal error: {type(exc).__name__}"
            if call.error is not None:
                span.set_status(trace.StatusCode.ERROR, call.error[:200])
                span.set_attribute("error.type", "tool_error")
            call.finish()
        return AgentAnswer(
            agent_id=self.agent_id,
            episode_id=episode_id,
            model_version=model,
            query=query,
            tool=call.tool,
            arguments=call.arguments,
            result=call.result,
            response=call.response,
            latency_ms=call.latency_ms or 0.0,
            error=call.error,
        )

    def run_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run one of the five tools directly (the MCP server also exposes them); ``InvalidInput`` if bad."""
        if self.definition.tool(name) is None:
            raise InvalidInput(f"{self.agent_id} has no tool {name!r}", field="tool")
        with tracer().start_as_current_span(f"tool {name}") as span:
            annotate(span, agent_id=self.agent_id, tool=name)
            return run_tool(name, arguments, self.data)

    def close(self) -> None:
        self.capture.close()

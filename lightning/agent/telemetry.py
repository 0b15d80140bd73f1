"""OpenTelemetry for the agent: spans with ``model_version``, exported to Application Insights.

``configure_telemetry(connection_string, …)`` installs the Azure Monitor exporter
(``azure-monitor-opentelemetry``'s ``configure_azure_monitor``) only when it is given
(``APPLICATIONINSIGHTS_CONNECTION_STRING``); otherwise spans go to the
no-op tracer (or whatever provider the host installed, e.g. tests). Never at import.

Where attributes land: the MCP SDK opens one SERVER span per JSON-RPC message
(``tools/call analyze_query``), which Application Insights stores as a row of
``requests``; the agent sets ``model_version``, ``agent_id``, ``tool`` and
``episode_id`` on that span, and custom span attributes become
``customDimensions`` — so ``customDimensions["model_version"]`` works in KQL.
Child spans (``analyze_query``, ``tool <name>``) land in ``dependencies`` with the
same attributes. See docs/telemetry.md.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

logger = logging.getLogger(__name__)

TRACER_NAME = "lightning.agent"
ATTRIBUTES = ("model_version", "agent_id", "tool", "episode_id")
_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def configure_telemetry(connection_string: str | None, *, service_name: str) -> bool:
    """Export to Application Insights when a connection string is given; True if it was configured."""
    global _configured
    if not connection_string:
        return False
    if _configured:
        return True
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    # service.name becomes cloud_RoleName: one role per agent (autonomous-agent, approval-agent).
    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({"service.name": service_name, "service.namespace": "mcp-agents"}),
        enable_live_metrics=False,
    )
    _configured = True
    logger.info("telemetry: exporting to Application Insights as %s", service_name)
    return True


def annotate(span: Any, **attributes: Any) -> None:
    """Set the known attributes that have a value (None is not a valid OpenTelemetry value)."""
    if span is None or not span.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)

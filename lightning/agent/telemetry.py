"""OpenTelemetry for the agent: spans with ``model_version``, exported to Application Insights.

``configure_telemetry(settings)`` installs the Azure Monitor exporter
(``azure-monitor-opentelemetry``'s ``configure_azure_monitor``) only when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; otherwise spans go to the
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
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from lightning.config import Settings

logger = logging.getLogger(__name__)

TRACER_NAME = "lightning.agent"
ATTRIBUTES = ("model_version", "agent_id", "tool", "episode_id")
_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def configure_telemetry(settings: Settings, *, service_name: str) -> bool:
    """Export to Application Insights when a connection string is set; True if it was configured."""
    global _configured
    secret = settings.applicationinsights_connection_string
    if secret is None or not secret.get_secret_value():
        return False
    if _configured:
        return True
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    # service.name becomes cloud_RoleName: one role per agent (autonomous-agent, approval-agent).
    configure_azure_monitor(
        connection_string=secret.get_secret_value(),
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

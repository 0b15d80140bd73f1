"""docs/telemetry.md names the cloud role the exporter really reports for the agent's resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lightning.agent import telemetry

DOC = Path(__file__).resolve().parents[3] / "docs" / "telemetry.md"


def test_the_documented_cloud_role_is_the_exporters(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    import azure.monitor.opentelemetry as monitor
    from azure.monitor.opentelemetry.exporter._utils import _get_cloud_role

    seen: dict[str, Any] = {}
    monkeypatch.setattr(monitor, "configure_azure_monitor", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(telemetry, "_configured", False)
    connection_string = "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    assert telemetry.configure_telemetry(connection_string, service_name="autonomous-agent")
    role = _get_cloud_role(seen["resource"])
    assert role == "mcp-agents.autonomous-agent"
    text = " ".join(DOC.read_text().split())
    assert f"The role name (`cloud_RoleName`) is `{role}`" in text

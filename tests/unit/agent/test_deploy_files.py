"""The Kubernetes manifests and the Dockerfile check themselves against the code they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from lightning.cli import build_app
from lightning.config import Settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "infra" / "k8s"
AGENTS = ("autonomous-agent", "approval-agent")


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def parse_cli(args: list[str]) -> dict[str, Any]:
    """Parse (not run) a command line the way the console script would."""
    group = typer.main.get_command(build_app())
    root = group.make_context("lightning-loop", [args[0]])
    command = group.get_command(root, args[0])  # type: ignore[attr-defined]
    assert command is not None, args[0]
    return dict(command.make_context(args[0], list(args[1:]), parent=root).params)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_has_a_deployment_and_service_the_workshop_can_reach(agent: str) -> None:
    deployment = find("Deployment", agent)
    assert deployment["metadata"]["namespace"] == "mcp-agents"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The rollout patches the container named like the Deployment.
    assert container["name"] == agent
    params = parse_cli(container["args"])
    assert params["agent_id"] == agent
    assert (params["host"], params["port"]) == ("0.0.0.0", 8080)
    assert params["follow_registry"] is False
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    lightning_home = find("ConfigMap", "lightning-agent-config")["data"]["LIGHTNING_HOME"]
    assert lightning_home in mounts  # the capture spool survives container restarts
    service = find("Service", agent)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_every_env_name_is_a_setting_the_code_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    config = find("ConfigMap", "lightning-agent-config")["data"]
    secret = find("Secret", "lightning-agent-telemetry")["stringData"]
    names = set(config) | set(secret)
    for agent in AGENTS:
        (container,) = find("Deployment", agent)["spec"]["template"]["spec"]["containers"]
        names |= {item["name"] for item in container["env"]}
    assert names - known == set()
    assert {"ENABLE_EPISODE_CAPTURE", "USE_TUNED_MODEL", "TUNED_MODEL_NAME"} <= names
    assert Settings(**{k.lower(): v for k, v in config.items()}).trainer == "azure-openai"


def test_dockerfile_runs_the_agent_as_non_root_on_8080() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("USER ") and not line.startswith(("USER root", "USER 0")) for line in lines)
    assert "EXPOSE 8080" in lines
    assert '".[agent]"' in text
    assert 'ENTRYPOINT ["lightning-loop"]' in lines
    cmd = text[text.index("CMD [") + 4 : text.index("]", text.index("CMD ["))].replace("\\\n", "")
    args = [part.strip().strip('"') for part in cmd.strip("[ ").split(",")]
    params = parse_cli(args)
    assert (params["host"], params["port"], params["agent_id"]) == ("0.0.0.0", 8080, "autonomous-agent")

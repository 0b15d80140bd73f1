"""The hardening of ``infra/k8s/`` and the Dockerfile, read from the files as kubectl and docker would.

The agents' Deployments: no service-account token, non-root, read-only root filesystem with the capture
spool on an emptyDir, every capability dropped, requests and limits, the image by digest (set through
kustomize), the API key from a Secret that is never committed; a NetworkPolicy that admits only the
ingress namespace to the agents' port.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "infra" / "k8s"
AGENTS = ("autonomous-agent", "approval-agent")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod(agent: str) -> dict[str, Any]:
    spec: dict[str, Any] = find("Deployment", agent)["spec"]["template"]
    return spec


def container(agent: str) -> dict[str, Any]:
    (only,) = pod(agent)["spec"]["containers"]
    return dict(only)


def kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / "kustomization.yaml").read_text()))


@pytest.mark.parametrize("agent", AGENTS)
def test_no_service_account_token_is_mounted(agent: str) -> None:
    assert pod(agent)["spec"]["automountServiceAccountToken"] is False
    account = find("ServiceAccount", pod(agent)["spec"]["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("agent", AGENTS)
def test_the_container_runs_non_root_read_only_with_no_capabilities(agent: str) -> None:
    spec = pod(agent)["spec"]
    security = container(agent)["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in security["capabilities"]


@pytest.mark.parametrize("agent", AGENTS)
def test_the_capture_spool_and_tmp_are_the_only_writable_places(agent: str) -> None:
    volumes = {v["name"]: v for v in pod(agent)["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(agent)["volumeMounts"]}
    home = find("ConfigMap", "lightning-agent-config")["data"]["LIGHTNING_HOME"]  # the spool is under it
    assert set(mounts) == {home, "/tmp"}
    for name in mounts.values():
        assert set(volumes[name]) == {"name", "emptyDir"}
        assert volumes[name]["emptyDir"]["sizeLimit"]


@pytest.mark.parametrize("agent", AGENTS)
def test_cpu_and_memory_have_requests_and_limits(agent: str) -> None:
    resources = container(agent)["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind


def test_the_image_is_pinned_by_digest_through_the_kustomize_override() -> None:
    (override,) = kustomization()["images"]
    assert DIGEST.match(override["digest"])
    assert "newTag" not in override
    for agent in AGENTS:
        name, _, digest = container(agent)["image"].partition("@")
        assert DIGEST.match(digest), agent
        assert name == override["name"], agent  # what kustomize matches and replaces
        assert container(agent)["imagePullPolicy"] == "IfNotPresent"  # a digest never changes


@pytest.mark.parametrize("agent", AGENTS)
def test_the_api_key_comes_from_a_secret_that_must_exist(agent: str) -> None:
    env = {item["name"]: item for item in container(agent)["env"]}
    key = env["AGENT_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert key == {"name": "lightning-agent-auth", "key": "AGENT_API_KEY"}  # not optional: no key, no pod
    rotation = env["AGENT_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert rotation == {"name": "lightning-agent-auth", "key": "AGENT_API_KEYS", "optional": True}
    assert "value" not in env["AGENT_API_KEY"]


def test_no_api_key_is_committed() -> None:
    assert [d for d in documents() if d["metadata"]["name"] == "lightning-agent-auth"] == []
    for path in K8S.glob("*.yaml"):
        assert "AGENT_API_KEY:" not in path.read_text(), path.name


def test_only_the_ingress_namespace_reaches_the_agents_port() -> None:
    policy = find("NetworkPolicy", "agents-from-ingress-only")
    spec = policy["spec"]
    selector = spec["podSelector"]["matchLabels"]
    for agent in AGENTS:
        labels = pod(agent)["metadata"]["labels"]
        assert selector.items() <= labels.items(), agent
        (port,) = container(agent)["ports"]
        assert spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": port["containerPort"]}]
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"namespaceSelector"}  # a namespace, not every pod or IP
    assert set(source["namespaceSelector"]["matchLabels"]) == {"kubernetes.io/metadata.name"}
    assert policy["metadata"]["namespace"] == "mcp-agents"


def test_everything_else_in_the_namespace_is_denied_by_default() -> None:
    spec = find("NetworkPolicy", "default-deny-ingress")["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_the_namespace_enforces_the_restricted_pod_security_profile() -> None:
    labels = find("Namespace", "mcp-agents")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_dockerfile_has_a_healthcheck_on_healthz_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (check,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK ")]
    assert "/healthz" in check
    assert "CMD [" in check
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")

"""KubernetesRollout with the real ``kubernetes`` client against the apps/v1 stand-in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.kubernetes.rollout import AKS_SCOPE, RESTARTED_AT, KubernetesRollout, LocalRollout
from lightning.bootstrap import kubernetes_rollout
from lightning.config import Settings
from lightning.domain.errors import Conflict, NotFound, ProviderError, TransientProviderError
from tests.fakes.clock import ManualClock
from tests.standins.kubernetes_api import container_env

pytestmark = pytest.mark.kubernetes

NS, NAME = "mcp-agents", "autonomous-agent"
TUNED = {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:gpt-4o-mini:autonomous-agent:abc123"}


def rollout(kubernetes_api: Any, **settings: Any) -> KubernetesRollout:
    built = kubernetes_rollout(Settings(k8s_api_server=kubernetes_api.url, **settings), poll_interval=0.01)
    assert isinstance(built, KubernetesRollout)
    return built


def test_roll_out_sets_env_restarts_and_waits(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={"ENABLE_EPISODE_CAPTURE": "true", "LOG_LEVEL": "info"})

    result = rollout(kubernetes_api).roll_out(namespace=NS, deployment=NAME, env=TUNED)

    assert result.ok, result.message
    assert not result.rolled_back
    assert result.previous_env == {"USE_TUNED_MODEL": None, "TUNED_MODEL_NAME": None}
    assert "2 of 2 replicas available" in result.message
    deployment = kubernetes_api.deployment(NS, NAME)
    assert container_env(deployment) == {"ENABLE_EPISODE_CAPTURE": "true", "LOG_LEVEL": "info", **TUNED}
    assert container_env(deployment, "otel-sidecar") == {}  # the sidecar is left alone
    assert RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    assert deployment["metadata"]["generation"] == 2
    patches = [r for r in kubernetes_api.requests if r["method"] == "PATCH"]
    assert len(patches) == 1
    assert patches[0]["content_type"].startswith("application/strategic-merge-patch+json")
    assert patches[0]["path"] == f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
    # It waited: several reads after the patch until all replicas were updated and available.
    assert sum(r["method"] == "GET" for r in kubernetes_api.requests) >= 3


def test_none_removes_a_variable_like_kubectl_set_env_dash(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(
        NS, NAME, env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "old", "X": "1"}
    )
    result = rollout(kubernetes_api).roll_out(
        namespace=NS, deployment=NAME, env={"USE_TUNED_MODEL": "false", "TUNED_MODEL_NAME": None}
    )
    assert result.ok
    assert result.previous_env == {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "old"}
    assert container_env(kubernetes_api.deployment(NS, NAME)) == {"USE_TUNED_MODEL": "false", "X": "1"}


def test_current_env(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={"TUNED_MODEL_NAME": "m1"})
    assert rollout(kubernetes_api).current_env(namespace=NS, deployment=NAME) == {
        "USE_TUNED_MODEL": None,
        "TUNED_MODEL_NAME": "m1",
    }


def test_never_available_rolls_back_to_the_previous_env(kubernetes_api: Any) -> None:
    previous = {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:good"}
    kubernetes_api.add_deployment(NS, NAME, env={"ENABLE_EPISODE_CAPTURE": "true", **previous})
    before = kubernetes_api.deployment(NS, NAME)["spec"]["template"]
    kubernetes_api.fail_when_env = {"TUNED_MODEL_NAME": "ft:broken"}

    result = rollout(kubernetes_api).roll_out(
        namespace=NS, deployment=NAME, env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:broken"}
    )

    assert not result.ok
    assert result.rolled_back
    assert "progress deadline exceeded" in result.message
    assert "previous env restored" in result.message
    assert result.previous_env == previous
    after = kubernetes_api.deployment(NS, NAME)
    assert container_env(after) == {"ENABLE_EPISODE_CAPTURE": "true", **previous}
    # The template is the previous revision again (annotation removed too), so the old ReplicaSet returns.
    assert after["spec"]["template"] == before
    assert sum(r["method"] == "PATCH" for r in kubernetes_api.requests) == 2


def test_the_budget_covers_waiting_and_restoring(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={})
    kubernetes_api.fail_when_env = {"TUNED_MODEL_NAME": TUNED["TUNED_MODEL_NAME"]}
    kubernetes_api.deadline_reads = 10**6  # the deployment never reports its deadline: our timeout must
    clock = ManualClock()
    started = clock.now
    adapter = kubernetes_rollout(
        Settings(k8s_api_server=kubernetes_api.url, rollout_timeout_seconds=600),
        poll_interval=2.0,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    result = adapter.roll_out(namespace=NS, deployment=NAME, env=TUNED)
    assert not result.ok
    assert result.rolled_back
    assert "not complete after 450s" in result.message  # 3/4 of the budget waits; the rest restores
    assert clock.now - started <= 600
    assert max(clock.sleeps) <= 2.0  # it polled every poll_interval at most
    assert container_env(kubernetes_api.deployment(NS, NAME)) == {}
    assert result.observed_env == {"USE_TUNED_MODEL": None, "TUNED_MODEL_NAME": None}


def test_conflict_is_retried(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={})
    kubernetes_api.conflicts = 2
    result = rollout(kubernetes_api).roll_out(namespace=NS, deployment=NAME, env=TUNED)
    assert result.ok
    assert sum(r["method"] == "PATCH" for r in kubernetes_api.requests) == 3
    assert container_env(kubernetes_api.deployment(NS, NAME)) == TUNED


def test_conflicts_that_never_stop_raise_and_change_nothing(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={"TUNED_MODEL_NAME": "m1"})
    kubernetes_api.conflicts = 100
    with pytest.raises(Conflict, match="kept changing"):
        rollout(kubernetes_api).roll_out(namespace=NS, deployment=NAME, env=TUNED)
    assert sum(r["method"] == "PATCH" for r in kubernetes_api.requests) == 5
    assert container_env(kubernetes_api.deployment(NS, NAME)) == {"TUNED_MODEL_NAME": "m1"}


def test_requests_carry_a_timeout_so_a_hung_api_cannot_hold_the_budget(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={})
    adapter = rollout(kubernetes_api)
    seen: list[Any] = []
    original = adapter.api.api_client.rest_client.request

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("_request_timeout"))
        return original(*args, **kwargs)

    adapter.api.api_client.rest_client.request = recording  # type: ignore[method-assign]
    assert adapter.roll_out(namespace=NS, deployment=NAME, env=TUNED).ok
    assert seen
    assert all(isinstance(t, float) and 1.0 <= t <= 30.0 for t in seen)


def test_rbac_403_is_a_clear_provider_error(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={})
    kubernetes_api.forbidden = True
    with pytest.raises(ProviderError) as caught:
        rollout(kubernetes_api).roll_out(namespace=NS, deployment=NAME, env=TUNED)
    message = str(caught.value)
    assert caught.value.status_code == 403
    assert "403 Forbidden" in message
    assert 'cannot get resource "deployments"' in message
    assert "get and patch on deployments.apps in namespace mcp-agents" in message


def test_missing_deployment_is_not_found(kubernetes_api: Any) -> None:
    with pytest.raises(NotFound, match="mcp-agents/autonomous-agent"):
        rollout(kubernetes_api).roll_out(namespace=NS, deployment=NAME, env=TUNED)


def test_unreachable_api_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = kubernetes_rollout(Settings(k8s_api_server=f"http://127.0.0.1:{port}"), poll_interval=0.01)
    assert isinstance(adapter, KubernetesRollout)
    adapter.api.api_client.configuration.retries = 0
    with pytest.raises(TransientProviderError, match="cannot reach the Kubernetes API"):
        adapter.current_env(namespace=NS, deployment=NAME)


class _FakeToken:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = expires_on


class _Credential:
    """A TokenCredential test object (azure-identity's protocol), counting the tokens it hands out."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> _FakeToken:
        self.scopes.append(scopes)
        return _FakeToken(f"aks-token-{len(self.scopes)}", time.time() + 3600)


def test_aks_token_is_sent_as_bearer(kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, NAME, env={})
    credential = _Credential()
    adapter = kubernetes_rollout(
        Settings(k8s_api_server=kubernetes_api.url, k8s_use_aks_token=True),
        credential=credential,
        poll_interval=0.01,
    )
    assert isinstance(adapter, KubernetesRollout)
    assert adapter.roll_out(namespace=NS, deployment=NAME, env=TUNED).ok
    assert {r["authorization"] for r in kubernetes_api.requests} == {"Bearer aks-token-1"}
    assert credential.scopes == [(AKS_SCOPE,)]  # one token, reused until it nears expiry


def test_kubeconfig_is_used(kubernetes_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K8S_API_SERVER")
    kubernetes_api.add_deployment(NS, NAME, env={})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {{server: "{kubernetes_api.url}"}}
users:
- name: dev
  user: {{token: kubeconfig-token}}
contexts:
- name: standin
  context: {{cluster: standin, user: dev, namespace: mcp-agents}}
current-context: standin
"""
    )
    adapter = kubernetes_rollout(Settings(kubeconfig=kubeconfig), poll_interval=0.01)
    assert isinstance(adapter, KubernetesRollout)
    assert adapter.current_env(namespace=NS, deployment=NAME) == {
        "USE_TUNED_MODEL": None,
        "TUNED_MODEL_NAME": None,
    }
    assert kubernetes_api.requests[-1]["authorization"] == "Bearer kubeconfig-token"


def test_no_cluster_configured_means_local_rollout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    adapter = kubernetes_rollout(Settings())
    assert isinstance(adapter, LocalRollout)
    result = adapter.roll_out(namespace=NS, deployment=NAME, env=TUNED)
    assert result.ok
    assert "follows the model registry" in result.message

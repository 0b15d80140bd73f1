"""An API server with its own CA (as AKS has): trusted through K8S_CA_CERT_DATA, refused without it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.bootstrap import kubernetes_rollout
from lightning.config import get_settings
from lightning.domain.errors import ConfigurationError, ProviderError, TransientProviderError
from tests.standins.arm import make_certificate
from tests.standins.kubernetes_api import start

NS, NAME = "mcp-agents", "autonomous-agent"


@pytest.fixture
def tls_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    cert_file, key_file = make_certificate(tmp_path)
    server, state, url = start(tls=(cert_file, key_file))
    state.add_deployment(NS, NAME, env={"TUNED_MODEL_NAME": "m1"})
    monkeypatch.setenv("K8S_API_SERVER", url)
    try:
        yield state, cert_file
    finally:
        server.shutdown()
        server.server_close()


def test_the_cluster_ca_makes_the_api_server_trusted(
    tls_api: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cert_file = tls_api
    monkeypatch.setenv("K8S_CA_CERT_DATA", base64.b64encode(cert_file.read_bytes()).decode())
    rollout = kubernetes_rollout(get_settings())
    assert rollout.current_env(namespace=NS, deployment=NAME)["TUNED_MODEL_NAME"] == "m1"


def test_without_the_cluster_ca_tls_verification_refuses(tls_api: tuple[Any, Path]) -> None:
    rollout = kubernetes_rollout(get_settings())
    with pytest.raises(ProviderError, match=r"TLS verification .* K8S_CA_CERT_DATA") as refused:
        rollout.current_env(namespace=NS, deployment=NAME)
    assert not isinstance(refused.value, TransientProviderError)


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"just text").decode()])
def test_a_bad_ca_is_a_configuration_error(
    tls_api: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("K8S_CA_CERT_DATA", value)
    with pytest.raises(ConfigurationError, match="K8S_CA_CERT_DATA"):
        kubernetes_rollout(get_settings())

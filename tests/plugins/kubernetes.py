"""Session fixture: the Kubernetes apps/v1 Deployments API stand-in (``tests/standins/kubernetes_api.py``).

``kubernetes_api`` gives each test a clean stand-in and sets ``K8S_API_SERVER`` to it, so
``KubernetesRollout.connect`` (and the CLI) talk to it through the real ``kubernetes`` client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def kubernetes_api_server() -> Iterator[Any]:
    from tests.standins.kubernetes_api import start

    server, state, url = start()
    state.url = url
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kubernetes_api(kubernetes_api_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stand-in, emptied, with ``K8S_API_SERVER`` pointing at it."""
    kubernetes_api_server.reset()
    monkeypatch.setenv("K8S_API_SERVER", kubernetes_api_server.url)
    return kubernetes_api_server

"""Shared test set-up: a clean environment per test and the local-server plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.plugins.azurite",
    "tests.plugins.cosmos",
    "tests.plugins.model_server",
    "tests.plugins.kubernetes",
]

_CLEARED_PREFIXES = (
    "AZURE_",
    "OPENAI_",
    "COSMOS_",
    "SERVICEBUS_",
    "LIGHTNING_",
    "APPLICATIONINSIGHTS_",
    "KUBECONFIG",
    "K8S_",
)
_CLEARED_NAMES = {
    "ENABLE_EPISODE_CAPTURE",
    "USE_TUNED_MODEL",
    "TUNED_MODEL_NAME",
    "AGENT_API_KEY",
    "AGENT_API_KEYS",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test sees the developer's Azure/OpenAI settings; each gets its own LIGHTNING_HOME."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name in _CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "lightning-home"
    monkeypatch.setenv("LIGHTNING_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # a stray .env in the repo must not leak into tests
    return home

"""Settings: defaults derived from LIGHTNING_HOME and the trainer; secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.config import get_settings


def test_defaults_live_under_lightning_home(clean_env: Path) -> None:
    settings = get_settings()
    assert settings.lightning_home == clean_env
    assert settings.lightning_store == f"sqlite:///{clean_env / 'lightning.db'}"
    assert settings.sqlite_path == clean_env / "lightning.db"
    assert settings.trainer == "local"
    assert settings.base_model == "local-base"


def test_azure_endpoint_selects_azure_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    settings = get_settings()
    assert settings.trainer == "azure-openai"
    assert settings.base_model == "gpt-4o-mini"


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMOS_KEY", "super-secret-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-print")
    shown = get_settings().masked()
    assert shown["COSMOS_KEY"] == "********"
    assert shown["OPENAI_API_KEY"] == "********"
    assert "super-secret-key" not in repr(shown)
    assert "sk-should-never-print" not in repr(shown)


def test_dotenv_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "LIGHTNING_QUEUE=servicebus\nSERVICEBUS_NAMESPACE=ns.servicebus.windows.net\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = get_settings()
    assert settings.lightning_queue == "servicebus"
    assert settings.servicebus_namespace == "ns.servicebus.windows.net"

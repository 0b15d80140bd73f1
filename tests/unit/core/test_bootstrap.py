"""The composition root: settings become adapter arguments here and nowhere else, and nothing is built at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.cosmos.client import CosmosAccount
from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.kubernetes.rollout import KubernetesRollout, LocalRollout
from lightning.adapters.openai.client import OpenAIEndpoint
from lightning.adapters.sqlite.cursors import SqliteCursorStore
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.adapters.sqlite.queue import SqliteQueue
from lightning.bootstrap import Container, cosmos_account, kubernetes_rollout, openai_endpoint
from lightning.bootstrap_agent import model_selector
from lightning.config import Settings
from lightning.domain.errors import ConfigurationError, InvalidInput

REPO = Path(__file__).resolve().parents[3]


def test_importing_the_root_builds_nothing_and_imports_no_adapter_or_sdk() -> None:
    script = (
        "import sys, lightning.bootstrap\n"
        "loaded = [m for m in sys.modules if m.startswith(('lightning.adapters', 'azure', 'openai', 'kubernetes'))]\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_embedded_defaults_land_where_the_settings_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = Settings(lightning_home=tmp_path / "home", lightning_agents_dir=tmp_path / "agents")
    c = Container(settings)
    assert isinstance(c.episodes, SqliteEpisodeStore)
    assert c.episodes._db.path == settings.sqlite_path.resolve()
    assert isinstance(c.cursors, SqliteCursorStore)
    assert c.cursors._db.path == settings.embedded_db_path.resolve()
    assert isinstance(c.queue, SqliteQueue)
    assert isinstance(c.blobs, LocalBlobStore)
    assert c.blobs.root == settings.datasets_dir.resolve()
    assert isinstance(c.evaluator(), RubricEvaluator)  # no judge configured
    assert isinstance(c.rollout, LocalRollout)  # no cluster configured
    assert c.episodes is c.episodes  # each port once


def test_the_queue_takes_the_delivery_count_from_settings(tmp_path: Path) -> None:
    queue = Container(Settings(lightning_home=tmp_path, queue_max_delivery_count=2)).queue
    assert isinstance(queue, SqliteQueue)
    assert queue._max_delivery_count == 2


def test_a_wrong_store_or_evaluator_name_is_refused_with_what_to_choose(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="sqlite:///PATH or cosmos"):
        Container(Settings(lightning_home=tmp_path, lightning_store="postgres://x")).episodes  # noqa: B018
    with pytest.raises(InvalidInput, match="task_adherence or rubric"):
        Container(Settings(lightning_home=tmp_path)).evaluator("judge")


def test_the_cosmos_account_comes_from_the_cosmos_settings() -> None:
    settings = Settings(
        cosmos_endpoint="https://localhost:8081/",
        cosmos_key="k3y",
        cosmos_verify_tls=False,
        cosmos_database="db",
    )
    assert cosmos_account(settings) == CosmosAccount(
        endpoint="https://localhost:8081/", database="db", key="k3y", verify_tls=False
    )
    assert "k3y" not in repr(cosmos_account(settings))
    assert cosmos_account(Settings(cosmos_endpoint="https://a.documents.azure.com:443/")).key is None
    with pytest.raises(ConfigurationError, match="COSMOS_ENDPOINT"):
        cosmos_account(Settings())


def test_the_openai_endpoint_follows_the_trainer() -> None:
    assert openai_endpoint(Settings(lightning_model_server="http://127.0.0.1:9/v1")) == OpenAIEndpoint(
        provider="local", base_url="http://127.0.0.1:9/v1"
    )
    assert openai_endpoint(
        Settings(
            azure_openai_endpoint="https://r.openai.azure.com", azure_openai_api_version="2025-04-01-preview"
        )
    ) == OpenAIEndpoint(
        provider="azure-openai", base_url="https://r.openai.azure.com", api_version="2025-04-01-preview"
    )
    openai = openai_endpoint(Settings(lightning_trainer="openai", openai_api_key="sk-test"))
    assert (openai.provider, openai.api_key) == ("openai", "sk-test")
    assert "sk-test" not in repr(openai)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        openai_endpoint(Settings(lightning_trainer="openai"))
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        openai_endpoint(Settings(lightning_trainer="azure-openai"))


def test_the_rollout_takes_its_cluster_and_budget_from_settings() -> None:
    rollout = kubernetes_rollout(Settings(k8s_api_server="http://127.0.0.1:9/", rollout_timeout_seconds=42))
    assert isinstance(rollout, KubernetesRollout)
    assert (rollout.host, rollout.timeout) == ("http://127.0.0.1:9", 42)


def test_the_agent_model_comes_from_the_workshop_env_then_the_base() -> None:
    assert model_selector(Settings(), agent_id="autonomous-agent").current() == "local-base"
    tuned = Settings(use_tuned_model=True, tuned_model_name="ft:local-base:x")
    assert model_selector(tuned, agent_id="autonomous-agent").resolve() == ("ft:local-base:x", "tuned-env")

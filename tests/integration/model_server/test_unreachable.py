"""With no model server running, the project's clients say how to start one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.adapters.openai.chat import OpenAIChatModel
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.retry import RetryPolicy
from lightning.bootstrap import openai_endpoint
from lightning.config import get_settings
from lightning.domain.errors import TransientProviderError

HINT = "start it with `lightning-loop serve-models` or set LIGHTNING_MODEL_SERVER"


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL whose port refuses connections (bound, never listening: nothing can take it meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _no_wait() -> RetryPolicy:
    return RetryPolicy(max_attempts=2, sleep=lambda _: None)


def test_start_training_without_a_model_server_says_how_to_start_one(
    clean_env: Path, refused_url: str, tmp_path: Path
) -> None:
    settings = get_settings(lightning_trainer="local", lightning_model_server=refused_url)
    provider = OpenAIFineTuneProvider.connect(openai_endpoint(settings), retry=_no_wait())
    dataset = tmp_path / "train.jsonl"
    dataset.write_text("{}\n")
    with pytest.raises(TransientProviderError) as caught:
        provider.upload_file(dataset)
    message = str(caught.value)
    assert f"cannot reach the local model server at {refused_url}" in message
    assert HINT in message
    assert message.startswith("upload of train.jsonl still failing after 2 attempts")


def test_the_agents_chat_model_says_how_to_start_one(clean_env: Path, refused_url: str) -> None:
    settings = get_settings(lightning_trainer="local", lightning_model_server=refused_url)
    chat = OpenAIChatModel.connect(openai_endpoint(settings))
    chat.retry = _no_wait()
    with pytest.raises(TransientProviderError, match=HINT.replace("`", ".")):
        chat.choose_tool(model="gpt-4o-mini", system_prompt="s", tools=[], query="q")


def test_another_provider_gets_no_local_hint(clean_env: Path, refused_url: str) -> None:
    settings = get_settings(lightning_trainer="openai", openai_api_key="sk-test", openai_base_url=refused_url)
    chat = OpenAIChatModel.connect(openai_endpoint(settings))
    chat.retry = _no_wait()
    with pytest.raises(TransientProviderError) as caught:
        chat.choose_tool(model="gpt-4o-mini", system_prompt="s", tools=[], query="q")
    assert "cannot reach openai at" in str(caught.value)
    assert "serve-models" not in str(caught.value)

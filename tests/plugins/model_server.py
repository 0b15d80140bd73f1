"""Session fixtures for the local model server (``lightning.adapters.modelserver``).

- ``model_server``: one server per test session, in-process on a free port with a
  temporary data directory; ``.base_url`` ends in ``/v1``; stopped at session end.
- ``use_model_server``: points ``LIGHTNING_MODEL_SERVER`` (and ``LIGHTNING_TRAINER=local``)
  at it for one test, so ``get_settings()`` / ``make_openai_client`` reach it.
- ``model_server_tuned_model``: a fine-tuned model of ``autonomous-agent`` on that server,
  trained once per session on generated requests (the name, e.g. ``ft:local-base:autonomous-agent:ab12cd34``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from lightning.adapters.modelserver.server import RunningServer


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from lightning.adapters.modelserver.server import start_server

    server = start_server(data_dir=tmp_path_factory.mktemp("model-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def use_model_server(
    clean_env: Path, model_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> RunningServer:
    monkeypatch.setenv("LIGHTNING_MODEL_SERVER", model_server.base_url)
    monkeypatch.setenv("LIGHTNING_TRAINER", "local")
    return model_server


@pytest.fixture(scope="session")
def model_server_tuned_model(model_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    from openai import OpenAI

    from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
    from lightning.agent.queries import generate_queries

    agent = YamlAgentRegistry().get("autonomous-agent")
    lines = []
    for sample in generate_queries(300, seed=11):
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": sample.tool, "arguments": json.dumps(sample.arguments)},
        }
        messages = [
            {"role": "system", "content": agent.system_prompt},
            {"role": "user", "content": sample.query},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
        lines.append(json.dumps({"messages": messages, "tools": agent.openai_tools()}))
    path = tmp_path_factory.mktemp("tuned-model") / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    client = OpenAI(base_url=model_server.base_url, api_key="local", max_retries=0)
    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="local-base", training_file=uploaded.id, suffix="autonomous-agent", seed=1
    )
    deadline = time.monotonic() + 120
    while job.status not in {"succeeded", "failed", "cancelled"}:
        if time.monotonic() > deadline:
            pytest.fail(f"fine-tuning job {job.id} did not finish in time")
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model is not None
    return job.fine_tuned_model

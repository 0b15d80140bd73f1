"""The happy path against the project's own local model server (``model_server`` session fixture): the
same provider code uploads, creates a supervised job that really trains, and reads progress and results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.retry import RetryPolicy
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.agent.queries import generate_queries
from lightning.bootstrap import openai_endpoint
from lightning.config import get_settings
from lightning.domain.training import Hyperparameters
from lightning.ports.bundles import TrainingPorts
from lightning.services.training import StartTraining, poll_training, start_training, training_status
from tests.fakes.queue import InMemoryQueue
from tests.integration.training.conftest import store_dataset

if TYPE_CHECKING:
    from lightning.adapters.modelserver.server import RunningServer


def tool_call_lines(n: int) -> list[str]:
    agent = YamlAgentRegistry().get("autonomous-agent")
    lines = []
    for i, sample in enumerate(generate_queries(n, seed=5)):
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": sample.tool, "arguments": json.dumps(sample.arguments)},
        }
        messages = [
            {"role": "system", "content": agent.system_prompt},
            {"role": "user", "content": sample.query},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
        lines.append(json.dumps({"messages": messages, "tools": agent.openai_tools()}))
    return lines


def test_train_on_the_local_model_server(model_server: RunningServer, clean_env: Path) -> None:
    del clean_env
    settings = get_settings(lightning_trainer="local", lightning_model_server=model_server.base_url)
    store_dataset(settings, train_examples=40, validation_examples=10, lines=tool_call_lines(50))
    provider = OpenAIFineTuneProvider.connect(
        openai_endpoint(settings), retry=RetryPolicy(), file_poll_interval=0.05
    )
    runs = SqliteRunStore.at(settings.sqlite_path)

    result = start_training(
        StartTraining(
            agent_id="autonomous-agent",
            dataset_name="autonomous-agent-v1",
            base_model=settings.base_model or "",
            hyperparameters=Hyperparameters(n_epochs=2),
            seed=3,
        ),
        TrainingPorts(
            runs=runs,
            datasets=SqliteDatasetStore.at(settings.sqlite_path),
            blobs=LocalBlobStore(settings.datasets_dir),
            provider=provider,
            queue=InMemoryQueue(),
        ),
    )
    run = result.run
    assert run.job_id is not None
    assert run.base_model == "local-base"

    deadline = time.monotonic() + 120
    terminal = False
    while not terminal:
        assert time.monotonic() < deadline, f"job {run.job_id} still {run.state}"
        time.sleep(0.05)
        run, terminal = poll_training(run, runs=runs, provider=provider)

    assert run.state == "succeeded", run.error
    assert run.fine_tuned_model is not None
    assert run.fine_tuned_model.startswith("ft:local-base:autonomous-agent:")
    status = training_status(run.job_id, runs=runs, provider=provider)
    assert status.status == "succeeded"
    assert status.progress_percent == 100
    assert status.trained_tokens
    assert status.trained_tokens > 0
    assert status.training_loss is not None
    assert status.validation_loss is not None
    assert status.total_epochs == 2
    assert status.duration_seconds is not None
    # the provider's own job agrees, and its metadata carries our idempotency key
    found = provider.find_job(run.idempotency_key)
    assert found is not None
    assert found.job_id == run.job_id

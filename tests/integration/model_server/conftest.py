"""Helpers for the model-server integration tests: an SDK client on the session server, upload, wait."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import pytest
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

if TYPE_CHECKING:
    from lightning.adapters.modelserver.server import RunningServer


def client_for(server: RunningServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="local-model-server", max_retries=0, timeout=30)


@pytest.fixture
def client(model_server: RunningServer) -> OpenAI:
    return client_for(model_server)


def upload(client: OpenAI, data: bytes, name: str = "train.jsonl") -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune").id


def wait_for_job(client: OpenAI, job_id: str, timeout: float = 120.0) -> tuple[FineTuningJob, list[str]]:
    """Poll until the job finishes; returns it and every status seen on the way."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if job.status in {"succeeded", "failed", "cancelled"}:
            return job, seen
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")
        time.sleep(0.02)

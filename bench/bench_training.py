"""Training benchmark: RunStore write/read rates and the cost of one start / one poll over the real SDK.

    .venv/bin/python bench/bench_training.py [--runs 2000] [--polls 200]

Measures (SQLite store in a temp dir, the fine-tuning stand-in from tests/integration/training on
127.0.0.1): run creates/s, etag-checked updates/s, get_by_job_id p99, list latency; start_training
(2 uploads + file checks + find + create) and poll_training (job + events + checkpoints) latency.
Prints one JSON object as its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.adapters.blob.local import LocalBlobStore
from lightning.adapters.openai.finetune import OpenAIFineTuneProvider
from lightning.adapters.retry import RetryPolicy
from lightning.adapters.sqlite.datasets import SqliteDatasetStore
from lightning.adapters.sqlite.db import SqliteDatabase, shared_database
from lightning.adapters.sqlite.queue import SqliteQueue
from lightning.adapters.sqlite.runs import SqliteRunStore
from lightning.bootstrap import openai_endpoint
from lightning.config import get_settings
from lightning.domain.training import Hyperparameters, TrainingRun
from lightning.ports.bundles import TrainingPorts
from lightning.services.training import StartTraining, poll_training, start_training
from tests.integration.training.conftest import store_dataset
from tests.integration.training.ft_server import FineTuneServer, Step


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_store(root: Path, n: int) -> dict[str, float]:
    store = SqliteRunStore(SqliteDatabase(root / "runs.db"))
    runs = [
        TrainingRun(
            id=f"run-{i}",
            agent_id=f"agent-{i % 4}",
            dataset_name="d",
            dataset_sha256="s",
            base_model="m",
            provider="local",
            idempotency_key=f"k{i}",
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    stored = [store.create_or_get(run)[0] for run in runs]
    creates = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, run in enumerate(stored):
        stored[i] = store.update(run.advance("queued", job_id=f"ftjob-{i}"))
    updates = n / (time.perf_counter() - t0)
    lookups = []
    for i in range(0, n, max(1, n // 500)):
        t = time.perf_counter()
        store.get_by_job_id(f"ftjob-{i}")
        lookups.append((time.perf_counter() - t) * 1000)
    lists = []
    for _ in range(50):
        t = time.perf_counter()
        store.list(agent_id="agent-1", limit=50)
        lists.append((time.perf_counter() - t) * 1000)
    return {
        "run_creates_per_s": round(creates),
        "run_updates_per_s": round(updates),
        "get_by_job_id_p99_ms": round(p(lookups, 0.99), 3),
        "list_50_p50_ms": round(statistics.median(lists), 3),
    }


def bench_provider(root: Path, polls: int) -> dict[str, float]:
    server = FineTuneServer().start()
    server.file_polls_before_processed = 0
    server.plan = [
        Step("running", step=i, total_steps=10**6, train_loss=0.5, at_seconds=i) for i in range(1, 40)
    ]
    try:
        settings = get_settings(
            lightning_home=root / "home", lightning_trainer="local", lightning_model_server=server.base_url
        )
        store_dataset(settings, train_examples=200, validation_examples=20)
        provider = OpenAIFineTuneProvider.connect(
            openai_endpoint(settings), retry=RetryPolicy(sleep=lambda _: None)
        )
        runs = SqliteRunStore.at(settings.sqlite_path)
        t = time.perf_counter()
        run = start_training(
            StartTraining(
                agent_id="autonomous-agent",
                dataset_name="autonomous-agent-v1",
                base_model="local-base",
                hyperparameters=Hyperparameters(n_epochs=3),
            ),
            TrainingPorts(
                runs=runs,
                datasets=SqliteDatasetStore.at(settings.sqlite_path),
                blobs=LocalBlobStore(settings.datasets_dir),
                provider=provider,
                queue=SqliteQueue(shared_database(settings.embedded_db_path)),
            ),
        ).run
        start_ms = (time.perf_counter() - t) * 1000
        timings = []
        for _ in range(polls):
            t = time.perf_counter()
            run, _ = poll_training(run, runs=runs, provider=provider)
            timings.append((time.perf_counter() - t) * 1000)
        return {
            "start_training_ms": round(start_ms, 1),
            "poll_p50_ms": round(statistics.median(timings), 2),
            "poll_p95_ms": round(p(timings, 0.95), 2),
            "http_requests_per_poll": round(
                len([r for r in server.requests if "/fine_tuning/jobs/" in r.path]) / polls, 2
            ),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"area": "training", "runs": args.runs, "polls": args.polls}
        result.update(bench_store(Path(tmp), args.runs))
        result.update(bench_provider(Path(tmp), args.polls))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Benchmark: the Azure host's adapters on local servers — SQLite queue, Cosmos (emulator) stores.

Measures, in one run:

* ``SqliteQueue``: messages/s for send, receive+complete (batches of 10), on a temporary file;
* ``CosmosEpisodeStore`` on the ``@vercel/cosmosdb-server`` emulator (keep-alive, TLS): inserts/s,
  streamed query items/s (continuation-token pages), guarded label writes/s, and the change-feed
  handler's episodes/s (``label_changed_episodes`` with the rubric evaluator, fed a ``DocumentList``).

The emulator is single-threaded JavaScript: absolute Cosmos numbers say little about Azure, but a
regression in the adapter's request count shows up here.

    .venv/bin/python bench/bench_azure_host.py [--messages 2000] [--episodes 1000]

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_queue(messages: int) -> dict[str, float]:
    from lightning.adapters.sqlite.db import SqliteDatabase
    from lightning.adapters.sqlite.queue import SqliteQueue

    with tempfile.TemporaryDirectory() as folder:
        queue = SqliteQueue(SqliteDatabase(Path(folder) / "queue.db"))
        started = time.perf_counter()
        for i in range(messages):
            queue.send(
                "fine-tune-jobs", {"kind": "poll", "run_id": f"run-{i}", "attempt": 1}, message_id=f"m-{i}"
            )
        sent = time.perf_counter()
        done = 0
        while done < messages:
            batch = queue.receive("fine-tune-jobs", max_messages=10)
            for message in batch:
                queue.complete(message)
            done += len(batch)
        finished = time.perf_counter()
    return {
        "queue_send_per_s": round(messages / (sent - started), 1),
        "queue_receive_complete_per_s": round(messages / (finished - sent), 1),
    }


def bench_cosmos(episodes: int) -> dict[str, float]:
    from lightning.bootstrap import Container
    from lightning.config import Settings
    from lightning.ports.episodes import EpisodeQuery
    from tests.integration.functions.episodes_factory import captured
    from tests.integration.functions.harness import document_list, handler, run_on
    from tests.plugins.cosmos import EMULATOR_KEY, SERVER_CLI, _free_port, _wait_for_port

    port = _free_port()
    script = (
        f"const lib = require({json.dumps(str(SERVER_CLI.parent))});"
        f"lib.createHttpsServer({{ keepAlive: true }}).listen({port}, '127.0.0.1');"
    )
    proc = subprocess.Popen(["node", "-e", script], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        import warnings

        warnings.simplefilter("ignore")
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(
                lightning_home=Path(home),
                lightning_store="cosmos",
                cosmos_endpoint=f"https://127.0.0.1:{port}/",
                cosmos_key=EMULATOR_KEY,
                cosmos_verify_tls=False,
                cosmos_database=f"bench-{uuid.uuid4().hex[:8]}",
                lightning_evaluator="rubric",
            )
            container = Container(settings)
            store: Any = container.episodes
            data = captured(episodes, seed=21, prefix="bench")
            t0 = time.perf_counter()
            store.add(data)
            t1 = time.perf_counter()
            streamed = sum(1 for _ in store.query(EpisodeQuery(agent_id=data[0].agent_id)))
            t2 = time.perf_counter()
            half = data[: episodes // 2]
            items = list(store._c.query_items("SELECT * FROM c", enable_cross_partition_query=True))
            feed = [i for i in items if i["id"] in {e.id for e in half}]
            t3 = time.perf_counter()
            with run_on(container):
                handler("label_changed_episodes")(document_list(feed))
            t4 = time.perf_counter()
            assert streamed == episodes
            assert store.count(EpisodeQuery(labeled=True)) == len(half)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    return {
        "cosmos_insert_per_s": round(episodes / (t1 - t0), 1),
        "cosmos_query_items_per_s": round(streamed / (t2 - t1), 1),
        "change_feed_label_per_s": round(len(half) / (t4 - t3), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "azure_host", "messages": args.messages, "episodes": args.episodes}
    result.update(bench_queue(args.messages))
    result.update(bench_cosmos(args.episodes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Review console benchmark: server time of the review queue's first page and of saving a label, on a
SQLite store of 1,000,000 episodes.

    python bench/bench_console.py                    # 1,000,000 episodes (the issue's figure)
    python bench/bench_console.py --episodes 100000  # quicker

Targets (issue 14): the first page of the review queue (what the page asks for: ``limit=50``) p95 <
300 ms; saving a label (a correction, with the etag, as the page sends it) p95 < 50 ms.

The store: a template of ``--template`` realistic episodes (generated requests, a fifth answered with
another tool, as an untuned model does; two agents) is added through the SQLite adapter and labeled by
the rubric through ``label_batch``; the template is then copied in SQL (new ids, timestamps, change
sequence numbers) until the store holds ``--episodes``. Every copy keeps its labels and stored review
priority, so the queue's index sees a million candidates.

"Server time" is the time the console's API handler takes for one request (``lightning.api.handle`` on
the console's Container: parse, service, JSON body) — what the server spends, without the network. The
same requests over HTTP (uvicorn on loopback, httpx) are reported beside it. Each round of the queue is
one request; label rounds label different episodes (each read first for its etag, as the page does;
the read is not timed). The first queue request after opening the store is reported apart (cold).
Prints progress on stderr and one JSON object as its last stdout line: median, mean, p95, min, max and
every round, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning import api
from lightning.agent.queries import TOOL_DEFAULTS, TOOLS, generate_queries
from lightning.bootstrap import Container
from lightning.config import get_settings
from lightning.domain.episode import Action, Episode, State
from lightning.ports.episodes import EpisodeQuery
from lightning.services.labeling import LabelBatchRequest, LabelingPolicy, label_batch

AGENTS = ("autonomous-agent", "approval-agent")
AGENT = AGENTS[0]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP_MS = 37


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def check(ok: bool, what: object) -> None:
    if not ok:
        raise SystemExit(f"bench_console: unexpected answer: {what}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples_ms: list[float]) -> dict[str, Any]:
    return {
        "rounds": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 2),
        "mean_ms": round(statistics.fmean(samples_ms), 2),
        "p95_ms": round(percentile(samples_ms, 0.95), 2),
        "min_ms": round(min(samples_ms), 2),
        "max_ms": round(max(samples_ms), 2),
        "every_round_ms": [round(s, 2) for s in samples_ms],
    }


def template(n: int, seed: int) -> list[Episode]:
    rng = random.Random(seed)
    samples = generate_queries(n, seed=seed)
    episodes = []
    for i, sample in enumerate(samples):
        tool, arguments = sample.tool, dict(sample.arguments)
        if rng.random() < 0.2:
            tool = rng.choice([t for t in TOOLS if t != sample.tool])
            arguments = dict(TOOL_DEFAULTS[tool])
        episodes.append(
            Episode(
                id=f"t{i:07d}",
                agent_id=AGENTS[i % 2],
                timestamp=T0 + timedelta(milliseconds=STEP_MS * i),
                state=State(query=sample.query, context={"user": "analyst@contoso.com"}),
                action=Action(tool=tool, arguments=arguments),
                result={"ok": True, "rows": 12},
                model_version="local-base",
                latency_ms=40.0,
            )
        )
    return episodes


def build_store(c: Container, *, episodes: int, template_size: int) -> dict[str, float]:
    """The template through the adapter and the rubric, then SQL copies of it up to ``episodes``."""
    began = time.perf_counter()
    base = template(template_size, seed=7)
    for start in range(0, len(base), 500):
        c.episodes.add(base[start : start + 500])
    added = time.perf_counter()
    for agent in AGENTS:
        label_batch(
            LabelBatchRequest(agent_id=agent), c.labeling_ports("rubric"), LabelingPolicy(min_score=0.7)
        )
    labeled = time.perf_counter()
    copies = -(-episodes // template_size) - 1
    span_us = STEP_MS * 1000 * template_size
    conn = c.episodes._db.connection()  # type: ignore[attr-defined]  # a benchmark may reach in
    for k in range(1, copies + 1):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            """
            INSERT INTO episodes(id, agent_id, ts, labeled, label_source, model_version, reward, version,
                                 seq, doc, label, labels, human, corrected, review_priority)
            SELECT id || '-c' || :k, agent_id, ts + :shift, labeled, label_source, model_version, reward,
                   version, seq + :k * :n,
                   json_set(doc, '$.id', id || '-c' || :k,
                            '$.timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', (ts + :shift) / 1000000.0, 'unixepoch')),
                   label, labels, human, corrected, review_priority
            FROM episodes WHERE id LIKE 't%' AND id NOT LIKE '%-c%'
            """,
            {"k": k, "shift": k * span_us, "n": template_size},
        )
        conn.execute("UPDATE episode_counters SET value = (SELECT max(seq) FROM episodes) WHERE name = 'seq'")
        conn.execute("COMMIT")
        if k % 10 == 0:
            log(f"  {template_size * (k + 1):,} episodes")
    conn.execute("ANALYZE")
    return {
        "template_add_s": round(added - began, 2),
        "template_label_s": round(labeled - added, 2),
        "copies_s": round(time.perf_counter() - labeled, 2),
    }


def queue_request(limit: int) -> api.ApiRequest:
    return api.ApiRequest(method="GET", query={"agent_id": AGENT, "limit": str(limit)}, caller="bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--template", type=int, default=20_000)
    parser.add_argument("--queue-rounds", type=int, default=30)
    parser.add_argument("--label-rounds", type=int, default=200)
    parser.add_argument("--limit", type=int, default=50, help="Queue page size (the page asks for 50).")
    parser.add_argument("--home", type=Path, default=None, help="LIGHTNING_HOME (default: a temp dir)")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="bench-console-")
    home = args.home or Path(workdir.name)
    os.environ["LIGHTNING_HOME"] = str(home)
    os.environ.pop("LIGHTNING_STORE", None)
    load_start = os.getloadavg()
    c = Container(get_settings())
    log(f"building a store of {args.episodes:,} episodes in {home} …")
    build = build_store(c, episodes=args.episodes, template_size=args.template)
    total = c.episodes.count(EpisodeQuery())
    log(f"store ready: {total:,} episodes {build}")

    # A fresh Container: the first request opens the store as a newly started console does.
    c = Container(get_settings())
    queue = api.route("review_queue")
    began = time.perf_counter()
    first = api.handle(queue, queue_request(args.limit), c)
    cold_ms = (time.perf_counter() - began) * 1000
    check(first.status == 200, first.body)
    queue_ms = []
    for _ in range(args.queue_rounds):
        began = time.perf_counter()
        answer = api.handle(queue, queue_request(args.limit), c)
        queue_ms.append((time.perf_counter() - began) * 1000)
        check(answer.status == 200 and len(answer.body["items"]) == args.limit, answer.body)
    log(f"queue: p95 {percentile(queue_ms, 0.95):.1f} ms")

    # Labels: corrections of episodes off the queue (as reviewers do), each read first for its etag.
    candidates = [item["id"] for item in api.handle(queue, queue_request(500), c).body["items"]]
    candidates += [f"t{i:07d}-c{k}" for k in range(3, 60) for i in range(0, 40, 2)]
    get_route, label_route = api.route("get_episode"), api.route("label_episode")
    label_ms = []
    kinds: dict[str, int] = {}
    for episode_id in candidates[: args.label_rounds]:
        read = api.handle(get_route, api.ApiRequest(method="GET", path_params={"episode_id": episode_id}), c)
        check(read.status == 200, read.body)
        tool = read.body["action"]["tool"]
        right = TOOLS[(TOOLS.index(tool) + 1) % len(TOOLS)] if tool in TOOLS else TOOLS[0]
        body = {
            "reward": 0.0,
            "reason": "wrong tool",
            "expected_tool": right,
            "expected_arguments": TOOL_DEFAULTS[right],
        }
        request = api.ApiRequest(
            method="POST",
            path_params={"episode_id": episode_id},
            headers={"if-match": read.headers["ETag"], "content-type": "application/json"},
            body=json.dumps(body).encode(),
            caller="bench",
        )
        began = time.perf_counter()
        saved = api.handle(label_route, request, c)
        label_ms.append((time.perf_counter() - began) * 1000)
        check(saved.status == 200, saved.body)
        kinds[saved.body["kind"]] = kinds.get(saved.body["kind"], 0) + 1
    log(f"labels: p95 {percentile(label_ms, 0.95):.1f} ms")

    # The same over HTTP, for context (uvicorn on loopback; includes the network stack and JSON I/O).
    import httpx

    from lightning.console.app import create_app, start

    served = start(create_app(c, tokens=[], reviewer="bench", loopback_only=True))
    http_queue_ms = []
    try:
        with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as client:
            for _ in range(max(5, args.queue_rounds // 3)):
                began = time.perf_counter()
                response = client.get("/api/review-queue", params={"agent_id": AGENT, "limit": args.limit})
                http_queue_ms.append((time.perf_counter() - began) * 1000)
                check(response.status_code == 200, response.text)
    finally:
        served.stop()

    result = {
        "benchmark": "console",
        "episodes": total,
        "store": "sqlite",
        "page_limit": args.limit,
        "build": build,
        "review_queue_first_page": {
            "what": "server time of GET /api/review-queue?agent_id&limit (lightning.api.handle)",
            "cold_first_request_ms": round(cold_ms, 2),
            **summary(queue_ms),
            "goal_p95_ms": 300,
            "meets_goal": percentile(queue_ms, 0.95) < 300,
        },
        "save_label": {
            "what": "server time of POST /api/episodes/{id}/label with If-Match (a correction; joins the golden set)",
            "kinds": kinds,
            **summary(label_ms),
            "goal_p95_ms": 50,
            "meets_goal": percentile(label_ms, 0.95) < 50,
        },
        "review_queue_over_http": summary(http_queue_ms),
        "load_average_before": [round(x, 2) for x in load_start],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

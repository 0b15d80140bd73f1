"""Episode store benchmark: insert rate, list latency, rubric labeling rate (end to end).

    python bench/bench_episodes.py                  # 1,000,000 episodes (the issue's figure)
    python bench/bench_episodes.py --episodes 50000 # quicker

Targets (issue 3): ``add`` ≥ 25,000 episodes/s in batches of 500; ``list-episodes
--unlabeled-only --limit 10`` p99 < 10 ms through the same service call the CLI makes;
rubric labeling ≥ 20,000 episodes/s end to end (read, evaluate, write) through
``label_batch``. Rates are wall-clock; ``*_per_cpu_s`` divide by this process's CPU time
instead (what an otherwise idle machine would show — the load average is recorded too).
Prints progress on stderr and one JSON object as its last stdout line.
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

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.domain.episode import Episode
from lightning.ports.bundles import LabelingPorts
from lightning.services.episodes import episode_query, list_episodes
from lightning.services.labeling import LabelBatchRequest, LabelingPolicy, label_batch

AGENTS = ("autonomous-agent", "approval-agent")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

REGIONS = ("north", "south", "east", "west")
METRICS = ("revenue", "units", "margin")
LEVELS = ("low", "medium", "high")
TOOLS = ("analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast")


def request(rng: random.Random) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A varied request (hundreds of distinct texts) with its correct call and a complete result."""
    kind = rng.randrange(5)
    if kind == 0:
        period = f"Q{rng.randint(1, 4)} {rng.randint(2023, 2026)}"
        return (
            f"Analyze customer churn for {period}",
            "analyze_churn",
            {"period": period},
            {"period": period, "churn_rate": 0.12, "at_risk_customers": 450},
        )
    if kind == 1:
        region = rng.choice(REGIONS)
        return (
            f"Generate a sales report for the {region} region",
            "sales_report",
            {"region": region, "period": "last quarter"},
            {"region": region, "period": "last quarter", "revenue": 1250000.0, "orders": 3400},
        )
    if kind == 2:
        n, metric = rng.randint(3, 50), rng.choice(METRICS)
        return (
            f"What are the top {n} products by {metric}?",
            "top_products",
            {"n": n, "metric": metric},
            {"metric": metric, "products": [{"name": "Widget", metric: 120000.0}]},
        )
    if kind == 3:
        level = rng.choice(LEVELS)
        return (
            f"Show me {level} risk customer segments",
            "customer_segments",
            {"risk_level": level},
            {"risk_level": level, "segments": [{"name": "lapsed", "customers": 120}]},
        )
    months = rng.randint(1, 12)
    return (f"Predict sales for the next {months} months", "sales_forecast", {"horizon_months": months},
            {"horizon_months": months, "forecast": [{"month": "2026-02", "revenue": 980000.0}]})  # fmt: skip


def make_batch(start: int, size: int, rng: random.Random) -> list[Episode]:
    batch = []
    for i in range(start, start + size):
        query, tool, arguments, result = request(rng)
        if rng.random() < 0.2:  # a wrong tool, as an untuned model makes
            tool = rng.choice(TOOLS)
        batch.append(
            Episode.model_validate(
                {
                    "id": f"episode-{i:08d}",
                    "agent_id": AGENTS[i % 2],
                    "timestamp": T0 + timedelta(milliseconds=37 * i),
                    "state": {"query": query, "context": {"user": "analyst@contoso.com"}},
                    "action": {"tool": tool, "arguments": arguments},
                    "result": result,
                    "model_version": "local-base",
                    "latency_ms": 12.5,
                }
            )
        )
    return batch


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--list-runs", type=int, default=2000)
    parser.add_argument(
        "--label", type=int, default=None, help="Episodes to label (default: one agent's half)"
    )
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="bench-episodes-")
    path = args.db or Path(workdir.name) / "bench.db"
    store = SqliteEpisodeStore(SqliteDatabase(path))
    rng = random.Random(7)

    # 1. insert: only store.add is timed (building Episode objects is the caller's cost).
    load_before = os.getloadavg()[0]
    insert_seconds = insert_cpu = 0.0
    inserted = 0
    for start in range(0, args.episodes, args.batch):
        batch = make_batch(start, min(args.batch, args.episodes - start), rng)
        began, cpu = time.perf_counter(), time.process_time()
        inserted += store.add(batch)
        insert_seconds += time.perf_counter() - began
        insert_cpu += time.process_time() - cpu
        if start and start % 100_000 == 0:
            print(f"inserted {start:,} ({start / insert_seconds:,.0f}/s)", file=sys.stderr)
    replay_began = time.perf_counter()
    replayed = store.add(make_batch(0, args.batch, rng))  # a replay: nothing new
    replay_seconds = time.perf_counter() - replay_began

    # 2. list-episodes --unlabeled-only --limit 10, through the CLI's service call.
    def timed_list(**flags: Any) -> dict[str, float]:
        samples = []
        for _ in range(args.list_runs):
            query = episode_query(limit=10, **flags)
            began = time.perf_counter()
            found = list_episodes(store, query)
            samples.append((time.perf_counter() - began) * 1000)
            assert len(found) == 10
        return {
            "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(percentile(samples, 0.99), 3),
            "max_ms": round(max(samples), 3),
        }

    list_unlabeled = timed_list(agent_id=AGENTS[0], unlabeled_only=True)
    list_all = timed_list(agent_id=AGENTS[0])

    # 3. rubric labeling, end to end: query unlabeled → evaluate → save_labels in chunks.
    to_label = args.label if args.label is not None else args.episodes // 2
    began, cpu = time.perf_counter(), time.process_time()
    report = label_batch(
        LabelBatchRequest(agent_id=AGENTS[0], limit=to_label),
        LabelingPorts(episodes=store, agents=YamlAgentRegistry(), evaluator=RubricEvaluator()),
        LabelingPolicy(min_score=0.7),
    )
    label_seconds = time.perf_counter() - began
    label_cpu = time.process_time() - cpu
    list_labeled = timed_list(agent_id=AGENTS[0], labeled_only=True)
    list_unlabeled_after = timed_list(agent_id=AGENTS[1], unlabeled_only=True)

    figures = {
        "bench": "episodes",
        "episodes": args.episodes,
        "batch_size": args.batch,
        "insert_per_s": round(inserted / insert_seconds),
        "insert_seconds": round(insert_seconds, 2),
        "insert_per_cpu_s": round(inserted / insert_cpu),
        "replay_batch_new": replayed,
        "replay_batch_ms": round(replay_seconds * 1000, 2),
        "list_unlabeled_limit10": list_unlabeled,
        "list_all_limit10": list_all,
        "list_labeled_limit10_after_labeling": list_labeled,
        "list_unlabeled_limit10_other_agent_after_labeling": list_unlabeled_after,
        "rubric_labeled": report.labeled,
        "rubric_failed": report.failed,
        "rubric_accepted_ge_0_7": report.accepted,
        "rubric_label_per_s": round(report.labeled / label_seconds),
        "rubric_label_seconds": round(label_seconds, 2),
        "rubric_label_per_cpu_s": round(report.labeled / label_cpu),
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "db_mb": round(path.stat().st_size / 1e6, 1),
        "targets": {"insert_per_s": 25_000, "list_p99_ms": 10, "rubric_label_per_s": 20_000},
        "targets_met": {
            "insert": inserted / insert_seconds >= 25_000,
            "list_p99": list_unlabeled["p99_ms"] < 10,
            "rubric_label": report.labeled / label_seconds >= 20_000,
        },
    }
    workdir.cleanup()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

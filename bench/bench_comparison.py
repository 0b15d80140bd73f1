"""Benchmark compare-versions: time to compare two sides of N episodes each (SQLite store, 2000 resamples).

Run: ``.venv/bin/python bench/bench_comparison.py [N ...]``. Prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

from lightning.domain.episode import Action, Episode, Label, State
from lightning.services.comparison import CompareRequest, compare_versions

BEFORE = datetime(2026, 2, 7, tzinfo=UTC)
AFTER = datetime(2026, 2, 7, 12, tzinfo=UTC)


def _episodes(n: int, start: datetime, prefix: str, accuracy: float, rng: Random) -> list[Episode]:
    out = []
    for i in range(n):
        correct = rng.random() < accuracy
        out.append(
            Episode(
                id=f"{prefix}-{i}",
                agent_id="autonomous-agent",
                timestamp=start + timedelta(seconds=i),
                state=State(query=f"q{i}"),
                action=Action(tool="query_sales" if correct else "get_inventory"),
                latency_ms=max(1.0, rng.gauss(800, 200)) if rng.random() > 0.01 else None,
                error="boom" if rng.random() < 0.05 else None,
            ).with_label(
                Label(
                    source="auto",
                    score=min(1.0, max(0.0, rng.gauss(0.6, 0.2))),
                    expected_tool="query_sales",
                    complete=rng.random() < 0.8,
                )
            )
        )
    return out


def main(sizes: list[int]) -> dict[str, object]:
    from lightning.adapters.sqlite.episodes import SqliteEpisodeStore

    results: dict[str, object] = {"resamples": 2000}
    for n in sizes:
        with tempfile.TemporaryDirectory() as home:
            store = SqliteEpisodeStore.at(Path(home) / "lightning.db")
            rng = Random(n)
            store.add(_episodes(n, BEFORE - timedelta(days=1), "b", 0.7, rng))
            store.add(_episodes(n, AFTER, "a", 0.75, rng))
            started = time.perf_counter()
            report = compare_versions(
                CompareRequest(agent_id="autonomous-agent", before_date=BEFORE, after_date=AFTER),
                episodes=store,
            )
            elapsed = time.perf_counter() - started
            results[f"compare_seconds_n{n}_per_side"] = round(elapsed, 3)
            results[f"verdict_n{n}"] = report.verdict.outcome
            print(f"n={n} per side: {elapsed:.2f}s, {report.verdict.line}", file=sys.stderr)
    return results


if __name__ == "__main__":
    sizes = [int(arg) for arg in sys.argv[1:]] or [200, 1000, 5000]
    print(json.dumps(main(sizes)))

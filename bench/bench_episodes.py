"""Episode store benchmark: insert rate, list latency, rubric labeling rate (end to end), and the
commands against a bare ``sqlite3`` + ``json`` loop doing the same work.

    python bench/bench_episodes.py                  # 1,000,000 episodes (the issue's figure)
    python bench/bench_episodes.py --episodes 50000 # quicker
    python bench/bench_episodes.py --episodes 0 --versus-episodes 100000  # only the bare-loop ratios

Targets (issue 3): ``add`` ≥ 25,000 episodes/s in batches of 500; ``list-episodes
--unlabeled-only --limit 10`` p99 < 10 ms through the same service call the CLI makes;
rubric labeling ≥ 20,000 episodes/s end to end (read, evaluate, write) through
``label_batch``. Rates are wall-clock; ``*_per_cpu_s`` divide by this process's CPU time
instead (what an otherwise idle machine would show — the load average is recorded too).

``versus_bare_loop`` (issue 18: import and labeling at least 0.5x, build kept at its ratio) runs the
three commands' service calls through the CLI's ``Container`` — ``import_episodes`` on a JSONL file,
``label_batch`` with the rubric, ``build_dataset`` — on ``--versus-episodes`` episodes of one agent, and
in the same rounds a bare loop on the same schema (the store's own migrations):

* import: read the file, ``json.loads`` each line, the timestamp to microseconds, ``json.dumps`` the
  document, ``executemany`` ``INSERT … ON CONFLICT DO NOTHING`` 500 rows a transaction with the
  change-sequence counter, as the store does;
* label: page the unlabeled rows (keyset, 500), ``json.loads`` each document, ``executemany`` an
  ``UPDATE`` of the same columns with the same label JSON, score and review priority — copied from the
  real run, not evaluated: the bare loop has no evaluator, so the rubric's own time counts against the
  command;
* build: page the labeled rows with reward >= 0.7, ``json.loads`` each, ``json.dumps`` one chat
  example (system, user, assistant tool call) a line into a file, and hash it; no de-duplication,
  redaction, token counting or validation, which the command does.

The generator repeats requests (hundreds of distinct texts, as an agent's traffic does): the rubric
remembers its verdict for a request and call it has seen, and the labeler builds one label per verdict
per second, so repeats cost little. ``distinct_requests`` (``--distinct-episodes``, one round) appends a
unique ticket number to every request, so nothing repeats: there the rubric's own analysis of each new
request dominates labeling.

Each ratio is the command's rate / the bare loop's rate in the same round (the two alternate which
goes first); the median (``statistics.median``), the mean and every round are reported, by wall
time and by CPU time (the build's helper process included), with the load average around each round.
Prints progress on stderr and one JSON object as its last stdout line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.bootstrap import Container
from lightning.config import Settings
from lightning.domain.dataset import DatasetManifest
from lightning.domain.episode import Episode
from lightning.ports.bundles import LabelingPorts
from lightning.services.datasets import BuildRequest, build_dataset
from lightning.services.episodes import episode_query, import_episodes, list_episodes
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


def make_batch(start: int, size: int, rng: random.Random, agents: tuple[str, ...] = AGENTS) -> list[Episode]:
    batch = []
    for i in range(start, start + size):
        query, tool, arguments, result = request(rng)
        if rng.random() < 0.2:  # a wrong tool, as an untuned model makes
            tool = rng.choice(TOOLS)
        batch.append(
            Episode.model_validate(
                {
                    "id": f"episode-{i:08d}",
                    "agent_id": agents[i % len(agents)],
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


# --- the commands against a bare sqlite3 + json loop ---------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LABEL_COLUMNS = ("label", "labels", "reward", "labeled")
PAGE = 500


def _connect(path: Path) -> sqlite3.Connection:
    """The connection a careful bare loop opens: WAL, synchronous=NORMAL, autocommit + explicit BEGIN."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _take_seq(conn: sqlite3.Connection, n: int) -> int:
    row = conn.execute(
        "UPDATE episode_counters SET value = value + ? WHERE name = 'seq' RETURNING value", (n,)
    ).fetchone()
    return int(row[0]) - n + 1


def bare_import(db: Path, lines: Path) -> int:
    conn = _connect(db)
    imported = 0
    batch: list[tuple[Any, ...]] = []

    def flush() -> int:
        conn.execute("BEGIN IMMEDIATE")
        first = _take_seq(conn, len(batch))
        cursor = conn.executemany(
            "INSERT INTO episodes(id, agent_id, ts, labeled, model_version, reward, seq, doc) "
            "VALUES (?, ?, ?, 0, ?, NULL, ?, ?) ON CONFLICT(id) DO NOTHING",
            [(*row[:4], first + i, row[4]) for i, row in enumerate(batch)],
        )
        conn.execute("COMMIT")
        batch.clear()
        return max(cursor.rowcount, 0)

    with lines.open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            for key in LABEL_COLUMNS:
                doc.pop(key, None)
            ts = (datetime.fromisoformat(doc["timestamp"]) - EPOCH) // timedelta(microseconds=1)
            batch.append((doc["id"], doc["agent_id"], ts, doc.get("model_version"), json.dumps(doc)))
            if len(batch) == PAGE:
                imported += flush()
    if batch:
        imported += flush()
    conn.close()
    return imported


def _pages(
    conn: sqlite3.Connection, select: str, params: tuple[Any, ...], *, newest: bool
) -> Iterator[list[Any]]:
    """Keyset pages of ``select`` (its first two columns ts, id; it ends with its WHERE clauses)."""
    keyset, order = ("(ts, id) < (?, ?)", "ts DESC, id DESC") if newest else ("(ts, id) > (?, ?)", "ts, id")
    after: tuple[Any, ...] = ()
    while True:
        where = f" AND {keyset}" if after else ""
        rows = conn.execute(f"{select}{where} ORDER BY {order} LIMIT {PAGE}", (*params, *after)).fetchall()
        if rows:
            yield rows
        if len(rows) < PAGE:
            return
        after = (rows[-1][0], rows[-1][1])


def bare_label(db: Path, agent_id: str, labels: dict[str, tuple[str, float, float]]) -> int:
    """``labels``: episode id → (labels JSON, score, review priority), as the real run wrote them."""
    conn = _connect(db)
    written = 0
    select = "SELECT ts, id, doc, version FROM episodes WHERE agent_id = ? AND labeled = 0"
    for rows in _pages(conn, select, (agent_id,), newest=False):
        updates = []
        for _ts, episode_id, doc, version in rows:
            json.loads(doc)  # a labeler needs the episode
            history, score, priority = labels[episode_id]
            updates.append((history, score, priority, episode_id, version))
        conn.execute("BEGIN IMMEDIATE")
        first = _take_seq(conn, len(updates))
        cursor = conn.executemany(
            "UPDATE episodes SET labels = ?, reward = ?, labeled = 1, label_source = 'auto', "
            "review_priority = ?, version = version + 1, seq = ? WHERE id = ? AND version = ?",
            [(h, s, p, first + i, e, v) for i, (h, s, p, e, v) in enumerate(updates)],
        )
        conn.execute("COMMIT")
        written += cursor.rowcount
    conn.close()
    return written


def bare_build(db: Path, agent_id: str, out: Path, system_prompt: str) -> int:
    conn = _connect(db)
    digest = hashlib.sha256()
    examples = 0
    system = {"role": "system", "content": system_prompt}
    with out.open("wb") as handle:
        select = "SELECT ts, id, doc FROM episodes WHERE agent_id = ? AND labeled = 1 AND reward >= ?"
        for rows in _pages(conn, select, (agent_id, 0.7), newest=True):
            for _ts, episode_id, doc in rows:
                episode = json.loads(doc)
                action = episode["action"]
                call = {"name": action["tool"], "arguments": json.dumps(action["arguments"])}
                example = {
                    "messages": [
                        system,
                        {"role": "user", "content": episode["state"]["query"]},
                        {"role": "assistant", "tool_calls": [{"id": f"call_{episode_id}", "type": "function",
                                                              "function": call}]},
                    ]
                }  # fmt: skip
                line = json.dumps(example).encode() + b"\n"
                handle.write(line)
                digest.update(line)
                examples += 1
    conn.close()
    return examples


def _clock() -> tuple[float, float]:
    times = os.times()
    return time.perf_counter(), times.user + times.system + times.children_user + times.children_system


def _timed(fn: Callable[[], int]) -> dict[str, float]:
    wall, cpu = _clock()
    count = fn()
    wall_after, cpu_after = _clock()
    return {"count": count, "seconds": wall_after - wall, "cpu_seconds": cpu_after - cpu}


def _streamed(manifest: DatasetManifest) -> int:
    """Episodes the build read with reward >= its minimum: examples plus those dropped after reading."""
    return manifest.episode_count + sum(
        count for reason, count in manifest.dropped.items() if reason not in ("unlabeled", "below_min_reward")
    )


def _settings(home: Path) -> Settings:
    return Settings(
        lightning_home=home,
        lightning_store=f"sqlite:///{home / 'lightning.db'}",
        lightning_queue="sqlite",
        lightning_blob="local",
        lightning_trainer="local",
        lightning_evaluator="rubric",
    )


def run_command(home: Path, lines: Path, agent_id: str, name: str) -> dict[str, dict[str, float]]:
    """The three commands' service calls, wired by the CLI's Container, on a fresh store in ``home``."""
    c = Container(_settings(home))

    def read() -> Iterator[str]:
        with lines.open(encoding="utf-8") as handle:
            yield from handle

    request = LabelBatchRequest(agent_id=agent_id)
    build = BuildRequest(agent_id=agent_id, name=name, base_model="gpt-4o-mini")
    return {
        "import": _timed(lambda: import_episodes(read, store=c.episodes).imported),
        "label": _timed(
            lambda: label_batch(request, c.labeling_ports("rubric"), LabelingPolicy(min_score=0.7)).labeled
        ),
        "build": _timed(lambda: _streamed(build_dataset(build, c.dataset_ports()).manifest)),
    }


def run_bare(
    home: Path, lines: Path, agent_id: str, labels: dict[str, tuple[str, float, float]], prompt: str
) -> dict[str, dict[str, float]]:
    """The bare loop on a fresh file in ``home`` with the store's schema (its own migrations)."""
    db = home / "lightning.db"
    SqliteEpisodeStore(SqliteDatabase(db))
    return {
        "import": _timed(lambda: bare_import(db, lines)),
        "label": _timed(lambda: bare_label(db, agent_id, labels)),
        "build": _timed(lambda: bare_build(db, agent_id, home / "train.jsonl", prompt)),
    }


def written_labels(db: Path) -> dict[str, tuple[str, float, float]]:
    """What the bare loop writes: the real run's labels, byte for byte (id → history, score, priority)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, labels, reward, review_priority FROM episodes").fetchall()
    finally:
        conn.close()
    return {episode_id: (history, score, priority) for episode_id, history, score, priority in rows}


def versus(ours: dict[str, float], theirs: dict[str, float]) -> dict[str, Any]:
    """One step of the command against the bare loop: rates, and the ratio by wall and by CPU time."""
    return {
        "command_per_s": round(ours["count"] / ours["seconds"]),
        "bare_per_s": round(theirs["count"] / theirs["seconds"]),
        "ratio": round(theirs["seconds"] / ours["seconds"] * ours["count"] / theirs["count"], 3),
        "cpu_ratio": round(theirs["cpu_seconds"] / ours["cpu_seconds"] * ours["count"] / theirs["count"], 3),
        "command_count": ours["count"],
        "bare_count": theirs["count"],
    }


def write_episodes(lines: Path, episodes: int, agent_id: str, *, distinct: bool = False) -> None:
    """The generator's episodes as a JSONL file; ``distinct`` makes every request's text its own."""
    rng = random.Random(11)
    with lines.open("w", encoding="utf-8") as handle:
        for start in range(0, episodes, PAGE):
            for episode in make_batch(start, min(PAGE, episodes - start), rng, agents=(agent_id,)):
                doc = episode.to_document()
                if distinct:
                    doc["state"]["query"] += f" for ticket {start // PAGE}-{episode.id[-3:]}"
                handle.write(json.dumps(doc) + "\n")


def distinct_requests(episodes: int, workdir: Path) -> dict[str, Any]:
    """One round on requests that never repeat: the rubric analyzes every request afresh and no two
    verdicts (so no two labels) are shared — the figure for traffic unlike the generator's."""
    agent_id = AGENTS[0]
    lines = workdir / "distinct.jsonl"
    write_episodes(lines, episodes, agent_id, distinct=True)
    prompt = YamlAgentRegistry().get(agent_id).system_prompt
    command_home, bare_home = workdir / "distinct-command", workdir / "distinct-bare"
    command_home.mkdir()
    bare_home.mkdir()
    ours = run_command(command_home, lines, agent_id, "distinct")
    theirs = run_bare(bare_home, lines, agent_id, written_labels(command_home / "lightning.db"), prompt)
    return {step: versus(ours[step], theirs[step]) for step in ("import", "label", "build")} | {
        "episodes": episodes
    }


def versus_bare_loop(episodes: int, rounds: int, workdir: Path) -> dict[str, Any]:
    agent_id = AGENTS[0]
    lines = workdir / "episodes.jsonl"
    write_episodes(lines, episodes, agent_id)
    prompt = YamlAgentRegistry().get(agent_id).system_prompt
    labels: dict[str, tuple[str, float, float]] = {}
    steps = ("import", "label", "build")
    runs: list[dict[str, Any]] = []
    for number in range(rounds):
        load_before = os.getloadavg()[0]
        figures: dict[str, dict[str, dict[str, float]]] = {}
        # Alternate which side goes first; the first round runs the command first for its labels.
        for side in ("command", "bare") if number % 2 == 0 else ("bare", "command"):
            home = workdir / f"round-{number}-{side}"
            home.mkdir()
            if side == "command":
                figures[side] = run_command(home, lines, agent_id, f"versus-{number}")
                labels = labels or written_labels(home / "lightning.db")
            else:
                figures[side] = run_bare(home, lines, agent_id, labels, prompt)
        run: dict[str, Any] = {"round": number, "first": "command" if number % 2 == 0 else "bare"}
        for step in steps:
            run[step] = versus(figures["command"][step], figures["bare"][step])
        run["loadavg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        runs.append(run)
        print(f"versus bare loop, round {number}: {json.dumps(run)}", file=sys.stderr)
    summary: dict[str, Any] = {"episodes": episodes, "rounds": runs}
    for step in steps:
        ratios = [run[step]["ratio"] for run in runs]
        cpu_ratios = [run[step]["cpu_ratio"] for run in runs]
        summary[step] = {
            "ratio_median": round(statistics.median(ratios), 3),
            "ratio_mean": round(statistics.fmean(ratios), 3),
            "cpu_ratio_median": round(statistics.median(cpu_ratios), 3),
            "cpu_ratio_mean": round(statistics.fmean(cpu_ratios), 3),
            "command_per_s_median": statistics.median(run[step]["command_per_s"] for run in runs),
            "bare_per_s_median": statistics.median(run[step]["bare_per_s"] for run in runs),
        }
    summary["targets"] = {"import": 0.5, "label": 0.5, "build": 0.54}
    summary["targets_met"] = {  # neither central value may hide a bad round
        step: min(summary[step]["ratio_median"], summary[step]["ratio_mean"]) >= target
        for step, target in summary["targets"].items()
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--list-runs", type=int, default=2000)
    parser.add_argument(
        "--label", type=int, default=None, help="Episodes to label (default: one agent's half)"
    )
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    parser.add_argument(
        "--versus-episodes", type=int, default=100_000, help="Episodes of the bare-loop comparison (0: skip)"
    )
    parser.add_argument("--versus-rounds", type=int, default=3)
    parser.add_argument(
        "--distinct-episodes",
        type=int,
        default=20_000,
        help="Episodes of one round with no request repeated (0: skip)",
    )
    args = parser.parse_args()

    figures: dict[str, Any] = {"bench": "episodes"}
    with tempfile.TemporaryDirectory(prefix="bench-episodes-") as workdir:
        if args.episodes > 0:
            figures.update(store_figures(args, Path(workdir)))
        if args.versus_episodes > 0:
            versus = Path(workdir) / "versus"
            versus.mkdir()
            figures["versus_bare_loop"] = versus_bare_loop(args.versus_episodes, args.versus_rounds, versus)
            if args.distinct_episodes > 0:
                figures["versus_bare_loop"]["distinct_requests"] = distinct_requests(
                    args.distinct_episodes, versus
                )
    print(json.dumps(figures))
    return 0


def store_figures(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Insert rate, list latency and rubric labeling on ``args.episodes`` episodes of two agents."""
    path = args.db or workdir / "bench.db"
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

    return {
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


if __name__ == "__main__":
    sys.exit(main())

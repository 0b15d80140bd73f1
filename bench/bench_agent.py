"""Benchmark: agent requests/s with episode capture off and on, in one run, against the local model server.

Three processes, like a deployment: the local model server (``serve-models``), the agent
(``serve-agent``, restarted with ENABLE_EPISODE_CAPTURE=false / true between rounds) and this load
generator sending the workshop's JSON-RPC bodies (generated realistic queries) from a thread pool.
Rounds alternate off/on so drift on a shared machine hits both alike. Reports throughput and
latency per mode, capture-on throughput as a share of capture-off (target >= 90%), the added p99
latency, and checks every captured request landed in the store.

    .venv/bin/python bench/bench_agent.py [--requests 400] [--concurrency 8] [--rounds 4]

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning.agent.queries import generate_queries  # noqa: E402
from lightning.agent.runtime import free_port  # noqa: E402
from lightning.agent.traffic import percentile, requests_from_samples, simulate  # noqa: E402


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def start(args: list[str], env: dict[str, str], health: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for(health, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def agent_cpu(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds of the agent process so far."""
    import psutil

    times = psutil.Process(process.pid).cpu_times()
    return float(times.user + times.system)


def count_episodes(home: Path) -> int:
    from lightning.bootstrap import Container
    from lightning.config import Settings
    from lightning.ports.episodes import EpisodeQuery

    return Container(Settings(lightning_home=home)).episodes.count(EpisodeQuery())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="Requests per round and mode.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()

    requests = requests_from_samples(generate_queries(args.requests, seed=5))
    warmup = requests_from_samples(generate_queries(args.warmup, seed=99))
    results: dict[str, list[Any]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        base_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AZURE_", "OPENAI_", "LIGHTNING_", "COSMOS_", "APPLICATIONINSIGHTS_"))
        }
        base_env.update({"PYTHONPATH": str(ROOT), "LIGHTNING_HOME": str(home), "LIGHTNING_TRAINER": "local"})
        model_port = free_port()
        base_env["LIGHTNING_MODEL_SERVER"] = f"http://127.0.0.1:{model_port}/v1"
        models = start(
            ["serve-models", "--port", str(model_port), "--data-dir", str(Path(tmp) / "models")],
            base_env,
            f"http://127.0.0.1:{model_port}/v1/models",
        )
        try:
            for round_number in range(args.rounds):
                for mode in ("off", "on"):
                    port = free_port()
                    env = {**base_env, "ENABLE_EPISODE_CAPTURE": "true" if mode == "on" else "false"}
                    agent = start(
                        [
                            "serve-agent",
                            "--port",
                            str(port),
                            "--no-start-model-server",
                            "--no-follow-registry",
                        ],
                        env,
                        f"http://127.0.0.1:{port}/healthz",
                    )
                    url = f"http://127.0.0.1:{port}"
                    try:
                        simulate(url, warmup, concurrency=args.concurrency)
                        cpu_before = agent_cpu(agent)
                        summary, answers = simulate(url, requests, concurrency=args.concurrency)
                        # The agent's own CPU per request: what capture costs, whatever else runs on the box.
                        cpu_ms = (agent_cpu(agent) - cpu_before) / len(requests) * 1000.0
                    finally:
                        stop(agent)  # SIGTERM flushes the captured episodes
                    latencies = [a.latency_ms for a in answers if a.outcome != "failed"]
                    results[mode].append(
                        {
                            "round": round_number,
                            "requests_per_second": summary.requests_per_second,
                            "failed": summary.failed,
                            "latencies": latencies,
                            "agent_cpu_ms_per_request": round(cpu_ms, 3),
                        }
                    )
                    print(
                        f"round {round_number} capture {mode:>3}: {summary.requests_per_second:7.1f} req/s, "
                        f"p50 {summary.latency_p50_ms} ms, p99 {summary.latency_p99_ms} ms, "
                        f"agent CPU {cpu_ms:.2f} ms/request, failed {summary.failed}",
                        flush=True,
                    )
        finally:
            stop(models)
        stored = count_episodes(home)

    def combined(mode: str) -> dict[str, Any]:
        runs = results[mode]
        latencies = [value for run in runs for value in run["latencies"]]
        cpu = [r["agent_cpu_ms_per_request"] for r in runs]
        return {
            "requests_per_second": round(statistics.fmean(r["requests_per_second"] for r in runs), 1),
            "per_round": [r["requests_per_second"] for r in runs],
            "agent_cpu_ms_per_request": round(statistics.median(cpu), 3),  # the true median, every count
            "agent_cpu_ms_per_request_per_round": cpu,
            "p50_ms": round(statistics.median(latencies), 3) if latencies else None,
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "failed": sum(r["failed"] for r in runs),
        }

    off, on = combined("off"), combined("on")
    # Rounds run back to back (off, on, off, on, ...): pairing each round's on with its off cancels most
    # of the drift a shared machine adds between rounds. Both central values are reported, over every
    # round: the true median (the mean of the two middle ratios for an even count) and the mean.
    paired = [
        b["requests_per_second"] / a["requests_per_second"]
        for a, b in zip(results["off"], results["on"], strict=True)
        if a["requests_per_second"]
    ]
    ratio = statistics.median(paired) if paired else 0.0
    mean_ratio = statistics.fmean(paired) if paired else 0.0
    captured_requests = (args.requests + args.warmup) * args.rounds
    summary = {
        "bench": "agent",
        "requests_per_mode_and_round": args.requests,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "capture_off": off,
        "capture_on": on,
        "throughput_ratio_on_vs_off": round(ratio, 3),
        "throughput_ratio_on_vs_off_median": round(ratio, 3),
        "throughput_ratio_on_vs_off_mean": round(mean_ratio, 3),
        "paired_round_ratios": [round(r, 3) for r in paired],  # in round order
        "added_agent_cpu_ms_per_request": round(
            on["agent_cpu_ms_per_request"] - off["agent_cpu_ms_per_request"], 3
        ),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_ratio": 0.9,
        "meets_target": min(ratio, mean_ratio) >= 0.9,  # neither central value may hide a bad round
        "added_p50_ms": round((on["p50_ms"] or 0) - (off["p50_ms"] or 0), 3),
        "added_p99_ms": round((on["p99_ms"] or 0) - (off["p99_ms"] or 0), 3),
        "episodes_stored": stored,
        "episodes_expected": captured_requests,
        "episodes_lost": captured_requests - stored,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""``make demo``: the workshop's Exercise 4, end to end, on one machine with the embedded defaults.

Starts the local model server and the reference agent (episode capture on) as real processes,
then drives the loop with the same CLI verbs a user types — capture → label → build dataset →
fine-tune → promote (with the gate) → retest → compare — and finishes with the hands-off
``run-loop`` picking up from there. Every number printed comes from this run. State lives in
``$LIGHTNING_HOME`` (default ``.lightning/demo``), recreated at each run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from io import StringIO
from pathlib import Path

import httpx

from lightning.cli import main as cli
from lightning.domain.episode import format_timestamp, utcnow

AGENT = "autonomous-agent"
DATASET = f"{AGENT}-v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 72 - len(title)), flush=True)


def run(args: Sequence[str], *, quiet: bool = False) -> str:
    """Run one CLI command as a user would, echoing it and its output; stop the demo if it fails."""
    if not quiet:
        print(f"$ lightning-loop {' '.join(args)}", flush=True)
    buffer = StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli(list(args))
    if not quiet:
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    if code != 0:
        raise SystemExit(f"demo stopped: `lightning-loop {' '.join(args)}` exited with {code}")
    return buffer.getvalue()


def _field(output: str, key: str) -> str:
    """The value of a ``Key: value`` line the CLI printed."""
    for line in output.splitlines():
        if line.startswith(f"{key}: "):
            return line.removeprefix(f"{key}: ").strip()
    raise SystemExit(f"demo stopped: the output has no {key!r} line")


@contextlib.contextmanager
def _process(args: Sequence[str], *, ready_url: str, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lightning.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"demo stopped: {' '.join(args)} exited; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready_url, timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"demo stopped: {ready_url} did not answer within 60 s; see {log}")
                time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _episode_count() -> int:
    listed = run(["list-episodes", "--agent-id", AGENT, "--limit", "100000", "--json"], quiet=True)
    return len(json.loads(listed or "[]"))


def _wait_for_episodes(expected: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _episode_count() < expected and time.monotonic() < deadline:
        time.sleep(0.5)


def main() -> int:
    home = Path(os.environ.get("LIGHTNING_HOME", ".lightning/demo")).resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    model_port, agent_port = _free_port(), _free_port()
    model_url = f"http://127.0.0.1:{model_port}/v1"
    agent_url = f"http://127.0.0.1:{agent_port}"
    os.environ.update(
        {
            "LIGHTNING_HOME": str(home),
            "LIGHTNING_TRAINER": "local",
            "LIGHTNING_MODEL_SERVER": model_url,
            "LIGHTNING_USER": "demo",
        }
    )
    env = {**os.environ, "ENABLE_EPISODE_CAPTURE": "true"}
    print(f"Lightning Loop demo — state in {home}")

    with (
        _process(
            ["serve-models", "--port", str(model_port), "--data-dir", str(home / "models")],
            ready_url=f"{model_url}/models",
            env=env,
            log=home / "model-server.log",
        ),
        _process(
            ["serve-agent", "--agent-id", AGENT, "--port", str(agent_port)],
            ready_url=f"{agent_url}/healthz",
            env=env,
            log=home / "agent.log",
        ),
    ):
        _banner("4.2 Generate agent interactions (base model, capture on)")
        before_start = format_timestamp(utcnow())
        run(["simulate-traffic", "--agent-url", agent_url, "--generate", "400", "--seed", "1"])
        _wait_for_episodes(405)

        _banner("4.3 Review captured episodes")
        run(["list-episodes", "--agent-id", AGENT, "--limit", "5"])

        _banner("4.4 Label episodes with rewards")
        run(
            [
                "label-batch",
                "--agent-id",
                AGENT,
                "--auto-label",
                "--evaluator",
                "task_adherence",
                "--min-score",
                "0.7",
            ]
        )
        run(["list-episodes", "--agent-id", AGENT, "--labeled-only", "--limit", "10"])

        _banner("4.5 Build the fine-tuning dataset")
        run(
            [
                "build-dataset",
                "--agent-id",
                AGENT,
                "--name",
                DATASET,
                "--min-reward",
                "0.7",
                "--output-format",
                "jsonl",
            ]
        )
        run(["dataset-info", "--name", DATASET])

        _banner("4.6 Fine-tune")
        started = run(
            [
                "start-training", "--agent-id", AGENT, "--dataset-name", DATASET, "--base-model", "local-base",
                "--training-epochs", "3", "--learning-rate-multiplier", "0.1",
            ]
        )  # fmt: skip
        job_id = _field(started, "Job ID")
        run(["get-training-status", "--job-id", job_id, "--watch", "--interval", "1"])
        tuned = _field(run(["get-training-status", "--job-id", job_id], quiet=True), "Fine-tuned Model")

        _banner("4.7 Promote (gate: tuned vs base on held-out requests) and roll out")
        run(["promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active"])
        run(["list-models", "--agent-id", AGENT])

        _banner("4.8 Retest: the agent follows the active model, no restart")
        after_start = format_timestamp(utcnow())
        count = _episode_count()
        run(["simulate-traffic", "--agent-url", agent_url, "--generate", "400", "--seed", "2"])
        _wait_for_episodes(count + 400)
        run(
            [
                "label-batch",
                "--agent-id",
                AGENT,
                "--auto-label",
                "--evaluator",
                "task_adherence",
                "--min-score",
                "0.7",
            ]
        )

        _banner("Compare before / after")
        run(
            [
                "compare-versions",
                "--agent-id",
                AGENT,
                "--before-date",
                after_start,
                "--after-date",
                after_start,
            ]
        )
        print(f"(before: episodes from {before_start} up to {after_start})")

        _banner("Hands-off: the loop the Functions app runs, on this machine (run-loop)")
        print("New traffic arrives; the loop labels it from the change sequence, builds a dataset once")
        print("50 new good episodes exist, fine-tunes, gates the candidate against the active model and")
        print("promotes it only if it is not worse.")
        count = _episode_count()
        run(["simulate-traffic", "--agent-url", agent_url, "--generate", "300", "--seed", "3"])
        _wait_for_episodes(count + 300)
        os.environ.update(
            {"DATASET_MIN_EPISODES": "50", "DATASET_MIN_HOURS_BETWEEN": "0", "FINE_TUNE_POLL_SECONDS": "1"}
        )
        run(
            [
                "run-loop",
                "--until-idle",
                "--interval",
                "1",
                "--dataset-interval",
                "3600",
                "--evaluator",
                "task_adherence",
            ]
        )
        run(["list-training-runs", "--agent-id", AGENT])
        run(["list-models", "--agent-id", AGENT])
    return 0


if __name__ == "__main__":
    sys.exit(main())

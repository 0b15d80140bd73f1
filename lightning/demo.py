"""``make demo``: the workshop's Exercise 4, end to end, on one machine with the embedded defaults.

Starts the local model server and the reference agent (episode capture on) as real processes,
then drives the loop with the same CLI verbs a user types — capture → label → a person reviews the
review queue (simulated here, and the demo says so) and a golden set is imported → build dataset →
fine-tune → promote (the gate decides on the golden set) → retest → compare — and finishes with the
hands-off ``run-loop`` picking up from there. It ends by writing an HTML report
(``$LIGHTNING_HOME/report.html``, from the same loop status the review console shows) and printing the
``serve-console`` command to explore further. Every number printed comes from this run. State lives
in ``$LIGHTNING_HOME`` (default ``.lightning/demo``), recreated at each run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import httpx

from lightning.cli import main as cli
from lightning.console.report import TimelineMark
from lightning.domain.episode import format_timestamp, utcnow

AGENT = "autonomous-agent"
DATASET = f"{AGENT}-v1"
TRAFFIC_SEEDS = {1: 400, 2: 400, 3: 300}
"""simulate-traffic's --seed → --generate: what the demo sends (generate_queries(n, seed=…))."""
REVIEWS = 30
GOLDEN_SEED = 977
GOLDEN_GENERATED = 60
GOLDEN_HELDOUT = 40


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


def _mark(marks: list[TimelineMark], title: str, detail: str = "") -> None:
    marks.append(TimelineMark(at=utcnow(), title=title, detail=detail))


def _review_queue_by_a_simulated_reviewer(marks: list[TimelineMark]) -> None:
    """The human-in-the-loop step: the top of the review queue, labeled with the generator's answers."""
    from lightning.agent.heldout import calls_agree
    from lightning.agent.queries import generate_queries

    _banner("4.4b Human in the loop: review where the judge is most likely wrong")
    print("A SIMULATED reviewer stands in for a person here: it knows the traffic generator's answers")
    print(
        "(simulate-traffic --seed 1 sent generate_queries(400, seed=1), each with its known right call), so"
    )
    print(
        f"its labels are ground truth. It labels the top {REVIEWS} of the review queue: a correction when the"
    )
    print("agent's call was wrong (the right tool and arguments), a confirmation when it was right.")
    run(["review-queue", "--agent-id", AGENT, "--limit", "10"])
    queue = json.loads(
        run(["review-queue", "--agent-id", AGENT, "--limit", str(REVIEWS), "--json"], quiet=True)
    )
    answers = {sample.query: sample for sample in generate_queries(TRAFFIC_SEEDS[1], seed=1, agent_id=AGENT)}
    kinds: dict[str, int] = {}
    judge_accepted_wrong = 0
    for index, item in enumerate(queue["items"]):
        known = answers.get(item["query"])
        if known is None:
            continue  # not from the generator (the reviewer knows only its answers)
        right = calls_agree(item["tool"], item["arguments"], known.tool, known.arguments)
        tool, arguments = (item["tool"], item["arguments"]) if right else (known.tool, known.arguments)
        args = [
            "label-episode", "--episode-id", item["id"], "--reward", "1.0" if right else "0.0",
            "--reason", "simulated reviewer: the right call" if right else f"simulated reviewer: should be {known.tool}",
            "--expected-tool", tool, "--expected-arguments", json.dumps(arguments, sort_keys=True),
        ]  # fmt: skip
        shown = index < 3
        if shown:
            print(f"$ lightning-loop {shlex.join(args)}", flush=True)
        kind = _field(run(args, quiet=True), "Kind")
        if shown:
            print(f"Kind: {kind}")
        kinds[kind] = kinds.get(kind, 0) + 1
        score = item["judge_score"]
        judge_accepted_wrong += int(not right and score is not None and score >= 0.7)
    reviewed = sum(kinds.values())
    print(f"… {reviewed - 3} more label-episode commands like these.")
    print(
        f"Simulated reviewer: {reviewed} episodes labeled — {kinds.get('correction', 0)} corrections (the agent's call "
        f"was wrong; {judge_accepted_wrong} of them the judge had accepted), {kinds.get('confirmation', 0)} confirmations"
    )
    _mark(
        marks,
        f"A simulated reviewer labeled the top {reviewed} of the review queue",
        "corrections and confirmations, with the generator's known answers",
    )


def _golden_file(home: Path) -> tuple[Path, int, int]:
    """Requests the training never sees, with their known right call: generated ones (another seed) and
    hand-written held-out paraphrases, minus any request of the demo's traffic; with how many of each."""
    from lightning.agent.heldout import heldout_samples
    from lightning.agent.queries import generate_queries
    from lightning.domain.finetune_format import normalize_query

    seen = {
        normalize_query(sample.query)
        for seed, n in TRAFFIC_SEEDS.items()
        for sample in generate_queries(n, seed=seed, agent_id=AGENT)
    }
    chosen: list[dict[str, Any]] = []
    taken = set(seen)
    counts: list[int] = []
    for candidates in (
        generate_queries(GOLDEN_GENERATED, seed=GOLDEN_SEED, agent_id=AGENT),
        heldout_samples()[:GOLDEN_HELDOUT],
    ):
        before = len(chosen)
        for sample in candidates:
            key = normalize_query(sample.query)
            if key not in taken:
                taken.add(key)
                chosen.append(
                    {
                        "query": sample.query,
                        "expected_tool": sample.tool,
                        "expected_arguments": sample.arguments,
                    }
                )
        counts.append(len(chosen) - before)
    path = home / "golden.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in chosen), encoding="utf-8")
    return path, counts[0], counts[1]


def _golden_and_judge_report(home: Path, marks: list[TimelineMark]) -> None:
    path, generated, heldout = _golden_file(home)
    print(
        f"\nA golden set: {generated} generated requests (seed {GOLDEN_SEED}; of {GOLDEN_GENERATED}, those not"
    )
    print(
        f"in the traffic) and {heldout} hand-written held-out paraphrases, with their known right calls: the"
    )
    print("training never sees them; they are the gate's ground truth.")
    run(["import-golden", str(path), "--agent-id", AGENT])
    _mark(marks, "Golden set imported", "requests the training never sees, with their known right calls")
    run(["judge-report", "--agent-id", AGENT])


def _write_report(home: Path, marks: list[TimelineMark]) -> Path:
    """The HTML report, from the same loop status the review console shows."""
    from lightning.bootstrap import Container, loop_policy
    from lightning.config import get_settings
    from lightning.console.report import render_report
    from lightning.services.status import loop_status

    c = Container(get_settings())
    status = loop_status(AGENT, c.status_ports(), loop_policy(c.settings))
    path = home / "report.html"
    path.write_text(
        render_report(
            status,
            generated_at=utcnow(),
            marks=marks,
            title=f"Lightning Loop demo: {AGENT}",
            explore=f"LIGHTNING_HOME={home} lightning-loop serve-console",
        ),
        encoding="utf-8",
    )
    return path


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
    marks: list[TimelineMark] = []
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
        _mark(
            marks,
            "Traffic on the base model (local-base)",
            "simulate-traffic --generate 400 --seed 1, capture on",
        )

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
        _mark(marks, "Episodes labeled by the judge", "label-batch --auto-label (rubric)")

        _review_queue_by_a_simulated_reviewer(marks)
        _golden_and_judge_report(home, marks)

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

        _banner("4.7 Promote (gate: tuned vs base on the golden set first) and roll out")
        run(["promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active"])
        run(["list-models", "--agent-id", AGENT])

        _banner("4.8 Retest: the agent follows the active model, no restart")
        after_start = format_timestamp(utcnow())
        count = _episode_count()
        _mark(
            marks,
            "Traffic on the tuned model",
            "simulate-traffic --generate 400 --seed 2; the agent follows the registry",
        )
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
        _mark(
            marks,
            "Hands-off loop started (run-loop)",
            "simulate-traffic --generate 300 --seed 3, then run-loop --until-idle",
        )
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

    _banner("Report")
    report = _write_report(home, marks)
    print(f"Report: {report}")
    print(
        "  the loop's timeline, before/after on the golden set (ground truth) with 95% intervals, the judge"
    )
    print("  report; open it in a browser.")
    print(
        "Explore further in the review console (review queue, corrections, judge vs people, golden set, status):"
    )
    print(f"  LIGHTNING_HOME={home} lightning-loop serve-console   # then open http://127.0.0.1:8765/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

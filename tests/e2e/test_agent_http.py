"""The agent end to end: ``serve-agent`` as a real process, driven by ``simulate-traffic`` and curl-like calls.

The model is the session's local model server; episodes go to the default SQLite store under the
test's LIGHTNING_HOME. SIGTERM must flush every captured episode before the process exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lightning.agent.queries import WORKSHOP_QUERIES
from lightning.agent.runtime import free_port
from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.ports.episodes import EpisodeQuery

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent_process(
    use_model_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    monkeypatch.setenv("ENABLE_EPISODE_CAPTURE", "true")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lightning.cli",
            "serve-agent",
            "--agent-id",
            "autonomous-agent",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a deadline, not a wait: a loaded 2-core box can take 30 s to import
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve-agent did not start: {process.communicate()[1]}")
        time.sleep(0.1)
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # also closes the pipes (a leaked pipe is a ResourceWarning)


def test_serve_simulate_and_shutdown_flushes_every_episode(
    agent_process: tuple[str, subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, process = agent_process
    code = main(
        [
            "simulate-traffic",
            "--agent-url",
            url,
            "--generate",
            "40",
            "--seed",
            "3",
            "--concurrency",
            "4",
            "--user",
            "analyst@contoso.com",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    block = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert block["Sent"] == "40"
    assert int(block["OK"]) + int(block["Tool Errors"]) == 40
    assert block["Failed"] == "0"
    assert json.loads(block["Model Versions"]) == {"local-base": 40}
    assert sum(json.loads(block["Tools"]).values()) == 40
    assert block["Latency p50"].endswith("ms")
    # The workshop's loop, as JSON output this time.
    code = main(["simulate-traffic", "--agent-url", url, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert (code, summary["sent"], summary["failed"]) == (0, 5, 0)
    # The workshop's loop printing each query and answer.
    code = main(["simulate-traffic", "--agent-url", url, "--show", "--concurrency", "1"])
    shown = capsys.readouterr().out
    assert code == 0
    assert (
        'Query: Analyze customer churn for Q4 2025\nResponse: analyze_churn {"period": "Q4 2025"} [local-base]'
        in shown
    )
    assert shown.count("\n---\n") == 5
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (the lifespan closes capture), then re-raises SIGTERM.
    assert process.wait(timeout=120) in (0, -signal.SIGTERM)
    episodes = list(Container(get_settings()).episodes.query(EpisodeQuery(agent_id="autonomous-agent")))
    assert len(episodes) == 50
    assert {e.model_version for e in episodes} == {"local-base"}
    assert {e.state.query for e in episodes} >= set(WORKSHOP_QUERIES)
    assert all("contoso" not in json.dumps(e.to_document()) for e in episodes)  # the user's email is redacted
    assert not list(get_settings().spool_dir.glob("*.jsonl"))


def test_the_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        code = main(["serve-agent", "--port", port, "--no-start-model-server"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith("error: cannot listen")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generate", "0"], "--generate must be at least 1"),
        (["--generate", "3", "--queries", "q.txt"], "either --queries FILE or --generate N"),
        (["--queries", "missing.txt"], "cannot read --queries"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
def test_simulate_traffic_bad_input(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate-traffic", "--agent-url", "http://127.0.0.1:9", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert message in err[0]


def test_simulate_traffic_from_a_file_against_no_agent_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"query": "Analyze customer churn for Q4 2025", "tool": "analyze_churn"}\n{"query": "Top 3 by margin?"}\n'
    )
    code = main(
        ["simulate-traffic", "--agent-url", f"http://127.0.0.1:{free_port()}", "--queries", str(queries)]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "Failed: 2" in out
    assert "Traceback" not in err


def test_an_unknown_agent_is_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["serve-agent", "--agent-id", "nope-agent", "--port", str(free_port()), "--no-start-model-server"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1
    assert "nope-agent" in err[0]

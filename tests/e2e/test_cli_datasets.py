"""build-dataset, dataset-info, list-datasets through the CLI on the real SQLite store and local blobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from tests.fakes.datasets import labeled_episode
from tests.unit.datasets.openai_checker import check_chat_lines

BUILD = [
    "build-dataset",
    "--agent-id",
    "autonomous-agent",
    "--name",
    "autonomous-agent-v1",
    "--min-reward",
    "0.7",
]


def add_episodes(n: int, start: int = 0) -> None:
    rewards = [0.7, 0.82, 0.9, 0.98]
    Container(get_settings()).episodes.add(
        [labeled_episode(i, reward=rewards[i % 4]) for i in range(start, start + n)]
    )


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_build_then_dataset_info_prints_the_workshop_block(capsys: pytest.CaptureFixture[str]) -> None:
    add_episodes(150)
    Container(get_settings()).episodes.add([labeled_episode(900 + i, reward=0.3) for i in range(20)])

    assert main([*BUILD, "--output-format", "jsonl"]) == 0
    built = capsys.readouterr().out
    assert "Dataset: autonomous-agent-v1\nStatus: built\n" in built

    assert main(["dataset-info", "--name", "autonomous-agent-v1"]) == 0
    out = capsys.readouterr().out.splitlines()
    manifest = Container(get_settings()).datasets.get("autonomous-agent-v1")
    assert out[:6] == [
        "Dataset: autonomous-agent-v1",
        "Episodes: 150",
        "Avg Reward: 0.85",
        "Min Reward: 0.70",
        "Max Reward: 0.98",
        f"Token Count: {manifest.token_count:,}",
    ]
    assert "," in out[5]
    assert out[6].startswith("Train Examples: ")
    assert out[7].startswith("Validation Examples: ")
    assert out[8].startswith("Tool Distribution: analyze_churn 30 (20%)")

    for file in manifest.files:
        path = Path(file.uri.removeprefix("file://"))
        assert path.is_relative_to(get_settings().datasets_dir.resolve())
        assert check_chat_lines(path.read_bytes().splitlines()) == {}


def test_json_views_and_listing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at the default 80 columns
    add_episodes(30)
    Container(get_settings()).episodes.add(
        [labeled_episode(500 + i, agent_id="approval-agent", reward=0.9) for i in range(12)]
    )
    assert main([*BUILD, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "autonomous-agent-v1"
    assert data["episodes"] == 30
    assert data["reused"] is False
    assert "episode_ids" not in data
    assert main(["build-dataset", "--agent-id", "approval-agent", "--name", "approval-v1", "--json"]) == 0
    capsys.readouterr()

    assert main(["dataset-info", "--name", "approval-v1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agent_id"] == "approval-agent"
    assert main(["list-datasets", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["approval-v1", "autonomous-agent-v1"]
    assert main(["list-datasets", "--agent-id", "autonomous-agent", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["autonomous-agent-v1"]
    assert main(["list-datasets"]) == 0
    table = capsys.readouterr().out
    assert "approval-v1" in table
    assert "autonomous-agent-v1" in table


def test_rebuilding_the_same_name(capsys: pytest.CaptureFixture[str]) -> None:
    add_episodes(30)
    assert main(BUILD) == 0
    assert main(BUILD) == 0
    assert "Status: unchanged" in capsys.readouterr().out

    add_episodes(5, start=30)
    assert main(BUILD) == 1
    assert "already exists with different content" in one_line_error(capsys)
    assert main([*BUILD, "--overwrite"]) == 0
    assert "Episodes: 35" in capsys.readouterr().out


def test_output_dir_gets_a_copy_and_system_prompt_file_is_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    add_episodes(20)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are terse. Call one tool.\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    args = [
        *BUILD,
        "--system-prompt-file",
        str(prompt),
        "--output-dir",
        str(out_dir),
        "--validation-split",
        "0",
    ]
    assert main(args) == 0
    assert "Train Copy: " in capsys.readouterr().out
    first = json.loads(
        (out_dir / "autonomous-agent-v1.train.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )
    assert first["messages"][0] == {"role": "system", "content": "You are terse. Call one tool."}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--agent-id", "ghost-agent"], 3, "agent 'ghost-agent' not found"),
        (["--min-reward", "1.5"], 2, "--min-reward must be between 0 and 1"),
        (["--min-reward", "-0.2"], 2, "--min-reward must be between 0 and 1"),
        (["--min-reward", "0.99"], 2, "no labeled episodes with reward >= 0.99"),
        (["--output-format", "csv"], 2, "--output-format must be jsonl or dpo"),
        (["--name", "bad name"], 2, "is not allowed"),
        (["--system-prompt-file", "/nonexistent/prompt.txt"], 2, "cannot read --system-prompt-file"),
        (["--since", "yesterday"], 2, "--since must be an ISO 8601"),
        (["--max-examples", "5"], 2, "--max-examples must be at least 10"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    add_episodes(12)
    base = dict(zip(BUILD[1::2], BUILD[2::2], strict=True))
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = ["build-dataset", *[part for pair in base.items() for part in pair]]
    assert main(argv) == code
    assert message in one_line_error(capsys)
    assert Container(get_settings()).datasets.list() == []


def test_unwritable_outputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    add_episodes(12)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert main([*BUILD, "--output-dir", str(blocker / "sub")]) == 2
    assert "--output-dir" in one_line_error(capsys)

    datasets_dir = get_settings().datasets_dir
    datasets_dir.parent.mkdir(parents=True, exist_ok=True)
    datasets_dir.write_text("in the way", encoding="utf-8")  # LIGHTNING_HOME/datasets cannot be a folder
    assert main(BUILD) == 2
    assert "make LIGHTNING_HOME writable" in one_line_error(capsys)
    assert Container(get_settings()).datasets.list() == []


def test_unknown_dataset_is_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset-info", "--name", "nope"]) == 3
    assert "list-datasets" in one_line_error(capsys)
    assert main(["list-datasets"]) == 0
    assert capsys.readouterr().out == "No datasets.\n"


def test_a_killed_build_leaves_no_visible_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    add_episodes(60_000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    work = get_settings().datasets_dir / ".work"
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning.cli", *BUILD],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(work.glob(".build-*/train.jsonl")):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the build never started writing"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=30)  # waits, and closes the stderr pipe
    assert process.returncode == -signal.SIGKILL

    assert main(["list-datasets"]) == 0
    assert capsys.readouterr().out == "No datasets.\n"
    assert main(["dataset-info", "--name", "autonomous-agent-v1"]) == 3
    capsys.readouterr()
    assert not [p for p in get_settings().datasets_dir.rglob("*.jsonl") if ".work" not in p.parts]

    # The next build is not disturbed by what the killed one left behind.
    assert main([*BUILD, "--max-examples", "100"]) == 0
    assert "Status: built" in capsys.readouterr().out

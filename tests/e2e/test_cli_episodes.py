"""The episode verbs end to end: ``lightning.cli.main([...])`` on the default SQLite store.

Each test has its own LIGHTNING_HOME (tests/conftest.py). Errors must be one line on stderr,
never a traceback, with exit code 2 (bad input), 3 (not found) or 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightning.cli import main
from tests.fakes.episodes import make_episode

AGENT = "autonomous-agent"
T0 = datetime(2026, 2, 7, 10, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables fold cells on narrow terminals


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def workshop_file(path: Path) -> Path:
    """The workshop's five queries: three right, two wrong."""
    episodes = [
        make_episode("episode-abc123", timestamp=T0),
        make_episode(
            "episode-def456",
            query="Predict next month's sales forecast",
            tool="analyze_churn",
            timestamp=T0 + timedelta(minutes=1),
        ),
        make_episode(
            "episode-top10",
            query="What are the top 10 products by revenue?",
            tool="top_products",
            arguments={"n": 10, "metric": "revenue"},
            result={"metric": "revenue", "products": [{"name": "Widget", "revenue": 10}]},
            timestamp=T0 + timedelta(minutes=2),
        ),
        make_episode(
            "episode-seg",
            query="Show me customer segments at risk",
            tool="sales_report",
            arguments={"region": "all", "period": "2025"},
            result={"region": "all"},
            timestamp=T0 + timedelta(minutes=3),
        ),
        make_episode("episode-other", agent_id="approval-agent", timestamp=T0 + timedelta(minutes=4)),
    ]
    path.write_text("".join(json.dumps(e.to_document()) + "\n" for e in episodes), encoding="utf-8")
    return path


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = workshop_file(tmp_path / "episodes.jsonl")
    code, out, _ = run(capsys, "import-episodes", str(path))
    assert code == 0
    assert "Imported: 5" in out
    return path


# --- import / export ----------------------------------------------------------------------------
def test_reimport_creates_no_duplicates(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "import-episodes", str(imported), "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["imported"], report["already_present"]) == (0, 5)
    code, out, _ = run(capsys, "list-episodes", "--json", "--limit", "100")
    assert len(json.loads(out)) == 5


def test_import_reports_each_rejected_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.jsonl"
    good = json.dumps(make_episode("ok").to_document())
    path.write_text(
        f'{good}\n{{"id": "x"\n\n{json.dumps({**json.loads(good), "id": "bad", "reward": "NaN"})}\n'
    )
    code, out, err = run(capsys, "import-episodes", str(path))
    assert code == 0
    assert "Imported: 1" in out
    assert "Rejected: 2" in out
    assert f"{path}:2: not valid JSON" in err
    assert f"{path}:4: reward: reward must be a finite number" in err


def test_strict_import_refuses_the_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(make_episode("ok").to_document()) + "\nnot json\n")
    code, out, err = run(capsys, "import-episodes", str(path), "--strict")
    assert code == 2
    assert "Imported: 0" in out
    assert f"{path}:2: not valid JSON" in err
    assert err.strip().splitlines()[-1] == (
        f"error: 1 invalid line(s) in {path}; nothing imported (--strict). Fix them or import without --strict"
    )
    assert json.loads(run(capsys, "list-episodes", "--json")[1]) == []


@pytest.mark.parametrize("name", ["missing.jsonl", "."])
def test_unreadable_import_file_is_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import-episodes", name)
    assert code == 2
    assert "cannot read" in one_error(err)


def test_non_utf8_import_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "caf\xe9"}\n')
    code, _, err = run(capsys, "import-episodes", str(path))
    assert code == 2
    assert "is not UTF-8 text" in one_error(err)


def test_export_writes_the_workshop_shape(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "out" / "export.jsonl"
    code, out, _ = run(capsys, "export-episodes", "--agent-id", AGENT, "--output", str(out_file))
    assert code == 0
    assert f"Exported 4 episode(s) to {out_file}" in out
    docs = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [d["id"] for d in docs] == ["episode-abc123", "episode-def456", "episode-top10", "episode-seg"]
    assert docs[0]["timestamp"] == "2026-02-07T10:30:00Z"
    assert {"id", "agent_id", "timestamp", "state", "action", "result", "reward", "labeled"} <= set(docs[0])
    assert not list(out_file.parent.glob("*.partial"))


def test_export_to_stdout_and_filters(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "label-episode", "--episode-id", "episode-abc123", "--reward", "0.9")
    code, out, _ = run(capsys, "export-episodes", "--labeled-only")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["episode-abc123"]
    code, _, err = run(capsys, "export-episodes", "--min-reward", "2")
    assert code == 2
    assert "min-score" in one_error(err) or "min-reward" in one_error(err)


# --- list / show --------------------------------------------------------------------------------
def test_list_episodes_table_newest_first(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list-episodes", "--agent-id", AGENT, "--limit", "10")
    assert code == 0
    assert "4 episode(s), newest first" in out
    assert out.index("episode-seg") < out.index("episode-top10") < out.index("episode-abc123")
    assert "Analyze customer churn for Q4 2025" in out
    assert "episode-other" not in out


def test_list_episodes_default_limit_is_20(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(
            json.dumps(make_episode(f"e{i:02d}", timestamp=T0 + timedelta(seconds=i)).to_document()) + "\n"
            for i in range(25)
        )
    )
    run(capsys, "import-episodes", str(path))
    _code, out, _ = run(capsys, "list-episodes", "--agent-id", AGENT, "--json")
    ids = [d["id"] for d in json.loads(out)]
    assert len(ids) == 20
    assert ids[0] == "e24"


def test_list_filters_labeled_unlabeled_and_time(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "label-episode", "--episode-id", "episode-def456", "--reward", "0.2")
    unlabeled = json.loads(run(capsys, "list-episodes", "--agent-id", AGENT, "--unlabeled-only", "--json")[1])
    labeled = json.loads(run(capsys, "list-episodes", "--agent-id", AGENT, "--labeled-only", "--json")[1])
    assert "episode-def456" not in [d["id"] for d in unlabeled]
    assert [d["id"] for d in labeled] == ["episode-def456"]
    timed = json.loads(
        run(
            capsys,
            "list-episodes",
            "--since",
            "2026-02-07T10:31:00Z",
            "--until",
            "2026-02-07T10:33:00Z",
            "--json",
        )[1]
    )
    assert [d["id"] for d in timed] == ["episode-top10", "episode-def456"]


def test_list_for_an_unknown_agent_says_no_episodes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list-episodes", "--agent-id", "nobody", "--unlabeled-only")
    assert code == 0
    assert out.strip() == "No unlabeled episodes for agent 'nobody'."


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--unlabeled-only", "--labeled-only"], "exclude each other"),
        (["--since", "yesterday"], "--since must be an ISO 8601"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--since", "2026-02-08", "--until", "2026-02-07"], "--since must be before --until"),
        (["--limit", "many"], "Invalid value for '--limit'"),
    ],
)
def test_list_bad_flags_are_one_line_errors(
    args: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "list-episodes", *args)
    assert code == 2
    assert text in one_error(err)


def test_show_episode(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show-episode", "--episode-id", "episode-abc123")
    assert code == 0
    assert "Episode: episode-abc123\n" in out
    assert 'Arguments: {"period": "Q4 2025"}' in out
    code, out, _ = run(capsys, "show-episode", "--episode-id", "episode-abc123", "--json")
    assert json.loads(out)["state"]["context"] == {"user": "analyst@contoso.com"}
    code, _, err = run(capsys, "show-episode", "--episode-id", "nope")
    assert code == 3
    assert one_error(err).startswith("error: episode 'nope' not found")


# --- label-episode ------------------------------------------------------------------------------
def test_label_episode_prints_a_confirmation(
    imported: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIGHTNING_USER", "alice@contoso.com")
    code, out, _ = run(
        capsys, "label-episode", "--episode-id", "episode-abc123", "--reward", "0.9",
        "--reason", "Correct tool selection, accurate response",
    )  # fmt: skip
    assert code == 0
    assert out.startswith(
        "Labeled Episode: episode-abc123\nAgent: autonomous-agent\nReward: 0.90\n"
        "Reason: Correct tool selection, accurate response\nLabeled By: alice@contoso.com\n"
        "Kind: confirmation\nGolden Set: golden-"
    )  # a person accepted the call: it joins the golden set
    shown = json.loads(run(capsys, "show-episode", "--episode-id", "episode-abc123", "--json")[1])
    assert (shown["reward"], shown["labeled"], shown["label"]["source"]) == (0.9, True, "human")


def test_label_episode_labeled_by_flag_and_json(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "label-episode",
        "--episode-id",
        "episode-def456",
        "--reward",
        "0",
        "--labeled-by",
        "bob",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert (doc["reward"], doc["label"]["labeled_by"]) == (0.0, "bob")


@pytest.mark.parametrize(
    ("reward", "text"),
    [
        ("1.5", "reward must be between 0 and 1, got 1.5"),
        ("-0.5", "reward must be between 0 and 1, got -0.5"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("good", "reward must be a number between 0 and 1, got 'good'"),
    ],
)
def test_label_episode_bad_reward(
    imported: Path, reward: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "label-episode", "--episode-id", "episode-abc123", "--reward", reward)
    assert code == 2
    assert text in one_error(err)


def test_label_episode_unknown_episode(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "label-episode", "--episode-id", "episode-zzz", "--reward", "0.5")
    assert code == 3
    assert "episode 'episode-zzz' not found" in one_error(err)


def test_label_episode_missing_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "label-episode", "--reward", "0.5")
    assert code == 2
    assert "--episode-id" in one_error(err)


# --- label-batch --------------------------------------------------------------------------------
def test_label_batch_the_workshop_way(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "label-batch", "--agent-id", AGENT, "--auto-label", "--evaluator", "task_adherence",
        "--min-score", "0.7",
    )  # fmt: skip
    assert code == 0, err
    assert "Evaluator: task_adherence (rubric-2)\n" in out
    assert "Episodes: 4\nLabeled: 4\nSkipped: 0\nFailed: 0\nAccepted (>= 0.70): 2\n" in out
    labeled = json.loads(
        run(capsys, "list-episodes", "--agent-id", AGENT, "--labeled-only", "--limit", "20", "--json")[1]
    )
    rewards = {d["id"]: d["reward"] for d in labeled}
    assert rewards["episode-abc123"] >= 0.9
    assert rewards["episode-top10"] >= 0.9
    assert rewards["episode-def456"] < 0.3
    assert rewards["episode-seg"] < 0.3  # sales_report for a segments question
    assert all(d["label"]["evaluator"] == "task_adherence" for d in labeled)
    # approval-agent's episode untouched
    assert (
        json.loads(run(capsys, "show-episode", "--episode-id", "episode-other", "--json")[1])["labeled"]
        is False
    )


def test_label_batch_leaves_human_labels_alone(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(
        capsys,
        "label-episode",
        "--episode-id",
        "episode-def456",
        "--reward",
        "0.95",
        "--reason",
        "I disagree",
    )
    code, out, err = run(capsys, "label-batch", "--agent-id", AGENT, "--auto-label", "--relabel", "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["labeled"], report["skipped"]) == (3, 1)
    assert "skipped episode-def456: labeled by a person" not in err  # --json keeps stderr clean
    doc = json.loads(run(capsys, "show-episode", "--episode-id", "episode-def456", "--json")[1])
    assert (doc["reward"], doc["label"]["source"], doc["label"]["reason"]) == (0.95, "human", "I disagree")


def test_label_batch_limit_and_rubric_evaluator(imported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "label-batch",
        "--agent-id",
        AGENT,
        "--auto-label",
        "--evaluator",
        "rubric",
        "--limit",
        "2",
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert (report["selected"], report["labeled"], report["evaluator_version"]) == (2, 2, "rubric-2")
    assert report["min_score"] is None
    assert report["accepted"] == 2  # no threshold: every labeled episode counts


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--agent-id", AGENT], 2, "label-batch needs --auto-label"),
        (["--agent-id", "nobody", "--auto-label"], 3, "registered agents: approval-agent, autonomous-agent"),
        (["--agent-id", AGENT, "--auto-label", "--evaluator", "vibes"], 2, "unknown evaluator 'vibes'"),
        (["--agent-id", AGENT, "--auto-label", "--min-score", "1.7"], 2, "--min-score"),
        (["--agent-id", AGENT, "--auto-label", "--min-score", "nan"], 2, "--min-score"),
        (["--agent-id", AGENT, "--auto-label", "--limit", "0"], 2, "--limit must be at least 1"),
        (["--auto-label"], 2, "--agent-id"),
        (
            ["--agent-id", AGENT, "--auto-label", "--concurrency", "0"],
            2,
            "--concurrency must be between 1 and 64",
        ),
    ],
)
def test_label_batch_errors(
    args: list[str], code: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(capsys, "label-batch", *args)
    assert got == code
    assert text in one_error(err)
    assert out == ""


def test_label_episode_with_the_wrong_agent_is_not_found(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "label-episode",
        "--episode-id",
        "episode-abc123",
        "--agent-id",
        "approval-agent",
        "--reward",
        "0.5",
    )
    assert code == 3
    assert "episode 'episode-abc123' not found" in one_error(err)
    code, out, _ = run(
        capsys, "label-episode", "--episode-id", "episode-abc123", "--agent-id", AGENT, "--reward", "0.5"
    )
    assert code == 0
    assert "Reward: 0.50" in out


def test_help_of_each_verb(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in (
        "list-episodes",
        "show-episode",
        "label-episode",
        "label-batch",
        "import-episodes",
        "export-episodes",
    ):
        code, out, _ = run(capsys, verb, "--help")
        assert code == 0
        assert "Usage" in out
    assert "accepted for training" in " ".join(run(capsys, "label-batch", "--help")[1].split())


def test_label_batch_progress_bar_goes_to_stderr_only(
    imported: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import lightning.commands.episodes as episodes_commands

    monkeypatch.setattr(episodes_commands, "_PROGRESS_AT", 1)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, _ = run(capsys, "label-batch", "--agent-id", AGENT, "--auto-label", "--json")
    assert code == 0
    assert json.loads(out)["labeled"] == 4  # stdout is exactly the JSON document

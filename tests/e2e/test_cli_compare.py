"""compare-versions through the CLI, on episodes in the real SQLite store under LIGHTNING_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from tests.unit.comparison.generate import DAY1, DAY2, side

BEFORE = "2026-02-07T00:00:00Z"
AFTER = "2026-02-07T12:00:00Z"
BASE = ["compare-versions", "--agent-id", "autonomous-agent"]
DATES = [*BASE, "--before-date", BEFORE, "--after-date", AFTER, "--resamples", "500"]


@pytest.fixture
def improved() -> None:
    """A clear improvement stored in SQLite: 60% → 90% tool accuracy, 12% → 3% errors."""
    Container(get_settings()).episodes.add(
        [
            *side(
                120,
                prefix="b",
                start=DAY1,
                tool_accuracy=0.6,
                reward_mean=0.55,
                error_rate=0.12,
                model_version="local-base",
            ),
            *side(
                120,
                prefix="a",
                start=DAY2,
                seed=2,
                tool_accuracy=0.9,
                reward_mean=0.78,
                error_rate=0.03,
                model_version="ft:local-base:autonomous-agent:v1",
            ),
        ]
    )


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.usefixtures("improved")
def test_table_shows_the_workshop_rows_and_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DATES) == 0
    out = capsys.readouterr().out
    for text in (
        "Before",
        "After",
        "Tool Selection",
        "Completeness",
        "Average Reward",
        "Error Rate",
        "Latency p95",
        "Episodes",
    ):
        assert text in out
    assert "Verdict: candidate better" in out


@pytest.mark.usefixtures("improved")
def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DATES, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"]["outcome"] == "better"
    assert report["baseline"]["episodes"] == 120
    assert report["baseline"]["model_versions"] == {"local-base": 120}
    metrics = {row["key"]: row for row in report["metrics"]}
    assert metrics["tool_accuracy"]["baseline"]["value"] == pytest.approx(0.6)
    assert metrics["tool_accuracy"]["candidate"]["value"] == pytest.approx(0.9)
    assert metrics["error_rate"]["p_value"] < 0.05


@pytest.mark.usefixtures("improved")
def test_by_model_version(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        *BASE,
        "--baseline-model",
        "local-base",
        "--candidate-model",
        "ft:local-base:autonomous-agent:v1",
        "--json",
        "--resamples",
        "500",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "models"
    assert report["candidate"]["label"] == "Candidate (ft:local-base:autonomous-agent:v1)"
    assert report["verdict"]["line"] == "Verdict: candidate better"


@pytest.mark.usefixtures("improved")
def test_chart_and_markdown_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart, markdown = tmp_path / "out.png", tmp_path / "report.md"
    assert main([*DATES, "--chart", str(chart), "--markdown-file", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert f"Chart: {chart}" in out
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    text = markdown.read_text(encoding="utf-8")
    assert "| Metric | Before Fine-Tuning | After Fine-Tuning | Difference | p-value | Result |" in text
    assert "**Verdict: candidate better**" in text


@pytest.mark.usefixtures("improved")
@pytest.mark.parametrize("flags", [["--markdown"], ["--markdown-file", "-"]])
def test_markdown_on_stdout(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DATES, *flags]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## compare-versions: autonomous-agent")
    assert "| Tool Selection Accuracy % * |" in out


def test_not_enough_data_is_said_plainly(capsys: pytest.CaptureFixture[str]) -> None:
    Container(get_settings()).episodes.add(
        [*side(80, prefix="b", start=DAY1), *side(9, prefix="a", start=DAY2, seed=2)]
    )
    assert main(DATES) == 0
    assert "Verdict: not enough data (n=9)" in capsys.readouterr().out


@pytest.mark.usefixtures("improved")
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([*BASE, "--before-date", AFTER, "--after-date", BEFORE], 2, "is later than --after-date"),
        (
            [*BASE, "--before-date", "yesterday", "--after-date", AFTER],
            2,
            "--before-date must be an ISO 8601",
        ),
        (
            [*BASE, "--before-date", BEFORE, "--after-date", "2026-13-01"],
            2,
            "--after-date must be an ISO 8601",
        ),
        ([*BASE, "--before-date", BEFORE], 2, "--before-date and --after-date"),
        (
            [*BASE, "--before-date", BEFORE, "--after-date", "2030-01-01T00:00:00Z"],
            2,
            "no episodes for the After Fine-Tuning side",
        ),
        (
            [
                "compare-versions",
                "--agent-id",
                "approval-agent",
                "--before-date",
                BEFORE,
                "--after-date",
                AFTER,
            ],
            2,
            "no episodes for the Before Fine-Tuning side (agent 'approval-agent', timestamp < 2026-02-07T00:00:00Z)",
        ),
        ([*BASE, "--baseline-model", "local-base"], 2, "go together"),
        ([*DATES, "--no-such-flag"], 2, "no-such-flag"),
        ([*DATES, "--min-samples", "1"], 2, "--min-samples"),
        ([*DATES, "--confidence", "0.5"], 2, "--confidence: Input should be greater than 0.5"),
        (
            ["compare-versions", "--agent-id", "", "--before-date", BEFORE, "--after-date", AFTER],
            2,
            "--agent-id",
        ),
        ([*DATES, "--json", "--markdown"], 2, "both print to stdout"),
        ([*DATES, "--chart", "/no/such/dir/out.png"], 2, "does not exist"),
        (["compare-versions", "--before-date", BEFORE, "--after-date", AFTER], 2, "--agent-id"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == code
    assert message in _one_line_error(capsys)


@pytest.mark.usefixtures("improved")
def test_console_script_runs_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LIGHTNING_HOME": os.environ["LIGHTNING_HOME"]}
    ok = subprocess.run(
        [sys.executable, "-m", "lightning.cli", *DATES, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["verdict"]["outcome"] == "better"
    bad = subprocess.run(
        [sys.executable, "-m", "lightning.cli", *BASE, "--before-date", AFTER, "--after-date", BEFORE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: --before-date 2026-02-07T12:00:00Z is later than --after-date")


@pytest.mark.parametrize(
    ("after_accuracy", "after_errors", "verdict"),
    [(0.6, 0.12, "Verdict: no significant difference"), (0.35, 0.25, "Verdict: candidate worse")],
)
def test_no_difference_and_regression_through_the_cli(
    after_accuracy: float, after_errors: float, verdict: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Container(get_settings()).episodes.add(
        [
            *side(150, prefix="b", start=DAY1, tool_accuracy=0.6, reward_mean=0.6, error_rate=0.12),
            *side(
                150,
                prefix="a",
                start=DAY2,
                seed=2,
                tool_accuracy=after_accuracy,
                reward_mean=0.6,
                error_rate=after_errors,
            ),
        ]
    )
    assert main([*DATES, "--markdown"]) == 0
    assert f"**{verdict}**" in capsys.readouterr().out

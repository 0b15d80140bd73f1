"""simulate-traffic's pieces: query files, the workshop body, percentiles and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning.agent.queries import WORKSHOP_QUERIES
from lightning.agent.traffic import (
    TrafficResult,
    choose_requests,
    load_requests,
    message_url,
    percentile,
    summarize,
    workshop_body,
)
from lightning.domain.errors import InvalidInput


def test_the_body_is_the_workshops() -> None:
    body = workshop_body("Analyze customer churn for Q4 2025", request_id="42")
    assert body == {
        "jsonrpc": "2.0",
        "id": "42",
        "method": "tools/call",
        "params": {"name": "analyze_query", "arguments": {"query": "Analyze customer churn for Q4 2025"}},
    }
    assert workshop_body("q")["id"] != workshop_body("q")["id"]
    assert workshop_body("q", context={"user": "u"})["params"]["arguments"]["context"] == {"user": "u"}
    assert message_url("http://x:8080/") == "http://x:8080/message"
    assert message_url("http://x:8080/message") == "http://x:8080/message"


def test_query_files_in_three_formats(tmp_path: Path) -> None:
    text = tmp_path / "q.txt"
    text.write_text("# the workshop\nAnalyze customer churn for Q4 2025\n\nTop 5 by margin?\n")
    assert [r.query for r in load_requests(text)] == [
        "Analyze customer churn for Q4 2025",
        "Top 5 by margin?",
    ]
    listed = tmp_path / "q.json"
    listed.write_text(json.dumps(["a", {"query": "b", "tool": "top_products"}]))
    loaded = load_requests(listed)
    assert [(r.query, r.expected_tool) for r in loaded] == [("a", None), ("b", "top_products")]
    lines = tmp_path / "q.jsonl"
    lines.write_text('{"query": "c", "expected_tool": "sales_forecast"}\n{"query": "d"}\n')
    assert [r.expected_tool for r in load_requests(lines)] == ["sales_forecast", None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no queries"),
        ("[1, 2]", "needs a query string"),
        ("[oops", "not valid JSON"),
        ('{"query": 1', "line 1"),
    ],
)
def test_bad_query_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        load_requests(path)


def test_default_requests_are_the_workshops_five_with_expected_tools() -> None:
    requests = choose_requests(queries_file=None, generate=None, seed=0, agent_id="autonomous-agent")
    assert [r.query for r in requests] == list(WORKSHOP_QUERIES)
    assert all(r.expected_tool for r in requests)
    assert len(choose_requests(queries_file=None, generate=12, seed=1, agent_id="autonomous-agent")) == 12


def test_percentiles_and_summary() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    results = [
        TrafficResult(
            query="a",
            outcome="ok",
            status=200,
            latency_ms=10,
            tool="analyze_churn",
            model_version="local-base",
            expected_tool="analyze_churn",
        ),
        TrafficResult(
            query="b",
            outcome="tool_error",
            status=200,
            latency_ms=30,
            tool="sales_report",
            model_version="local-base",
            error="bad args",
            expected_tool="sales_forecast",
        ),
        TrafficResult(query="c", outcome="failed", status=None, latency_ms=1, error="ConnectError"),
    ]
    summary = summarize(results, seconds=2.0)
    assert (summary.sent, summary.ok, summary.tool_errors, summary.failed) == (3, 1, 1, 1)
    assert summary.requests_per_second == 1.5
    assert summary.latency_p50_ms == 10
    assert summary.tools == {"analyze_churn": 1, "sales_report": 1}
    assert summary.model_versions == {"local-base": 2}
    assert summary.tool_accuracy == 0.5
    assert len(summary.first_errors) == 2

"""Ground truth end to end through the CLI, on SQLite and the local model server:
review-queue → label-episode corrections → import-golden → judge-report → build-dataset → train →
promote-model (the gate decides on the golden set), then a poisoned candidate is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lightning.agent.queries import QuerySample, generate_queries
from lightning.cli import main

AGENT = "autonomous-agent"
TOOLS = ["analyze_churn", "sales_report", "top_products", "customer_segments", "sales_forecast"]
DEFAULTS: dict[str, dict[str, Any]] = {
    "analyze_churn": {"period": "last quarter"},
    "sales_report": {"region": "all", "period": "last quarter"},
    "top_products": {"n": 10, "metric": "revenue"},
    "customer_segments": {"risk_level": "all"},
    "sales_forecast": {"horizon_months": 3},
}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def field(out: str, key: str) -> str:
    """The value of the last ``Key: value`` line (a --watch prints a block per change)."""
    return [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(f"{key}: ")][-1]


def wrong_call(sample: QuerySample) -> tuple[str, dict[str, Any]]:
    other = TOOLS[(TOOLS.index(sample.tool) + 1) % len(TOOLS)]
    return other, dict(DEFAULTS[other])


def episode_line(
    index: int, sample: QuerySample, *, right: bool, tag: str, day: int = 7, score: float | None = None
) -> str:
    tool, arguments = (sample.tool, dict(sample.arguments)) if right else wrong_call(sample)
    doc: dict[str, Any] = {
        "id": f"{tag}-{index:04d}",
        "agent_id": AGENT,
        "timestamp": f"2026-02-{day:02d}T10:{index // 60 % 60:02d}:{index % 60:02d}Z",
        "state": {"query": sample.query, "context": {}},
        "action": {"tool": tool, "arguments": arguments},
        "result": {"ok": True},
    }
    if score is not None:  # a judge that was fooled: it accepted every one of these
        doc["label"] = {"source": "auto", "score": score, "reason": "judge accepted", "evaluator": "rubric"}
        doc["reward"] = score
        doc["labeled"] = True
    return json.dumps(doc)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train(capsys: pytest.CaptureFixture[str], dataset: str) -> str:
    code, out, err = run(
        capsys, "start-training", "--agent-id", AGENT, "--dataset-name", dataset, "--base-model", "local-base",
        "--training-epochs", "3",
    )  # fmt: skip
    assert code == 0, err
    job = field(out, "Job ID")
    code, out, err = run(capsys, "get-training-status", "--job-id", job, "--watch", "--interval", "0.1")
    assert code == 0, err
    assert field(out, "Status") == "succeeded"
    return field(out, "Fine-tuned Model")


def test_review_correct_build_train_promote_then_a_poisoned_candidate_is_refused(
    use_model_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic = generate_queries(160, seed=31, agent_id=AGENT)
    # What the base model did: right on two requests in three (truth known to this test only).
    lines = [episode_line(i, s, right=i % 3 != 0, tag="ep") for i, s in enumerate(traffic)]
    assert run(capsys, "import-episodes", str(write(tmp_path / "episodes.jsonl", lines)))[0] == 0
    assert run(capsys, "label-batch", "--agent-id", AGENT, "--auto-label", "--evaluator", "rubric")[0] == 0

    # 1. The review queue, answered by a reviewer who knows the truth.
    code, out, _ = run(capsys, "review-queue", "--agent-id", AGENT, "--limit", "25", "--json")
    assert code == 0
    items = json.loads(out)["items"]
    assert len(items) == 25
    assert all(item["id"] and item["why"] for item in items)
    truth = {f"ep-{i:04d}": s for i, s in enumerate(traffic)}
    corrected = 0
    for item in items:
        sample = truth[item["id"]]
        right = item["tool"] == sample.tool and item["arguments"] == sample.arguments
        code, out, err = run(
            capsys, "label-episode", "--episode-id", item["id"], "--reward", "1.0" if right else "0.1",
            "--reason", "reviewed", "--expected-tool", sample.tool,
            "--expected-arguments", json.dumps(sample.arguments),
        )  # fmt: skip
        assert code == 0, err
        assert field(out, "Kind") == ("confirmation" if right else "correction")
        corrected += not right
    assert corrected > 0
    code, out, _ = run(capsys, "review-queue", "--agent-id", AGENT, "--limit", "200", "--json")
    assert not {item["id"] for item in items} & {i["id"] for i in json.loads(out)["items"]}

    # Bad corrections are one line and store nothing.
    code, _, err = run(
        capsys, "label-episode", "--episode-id", "ep-0001", "--reward", "0.1", "--expected-tool", "send_email"
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "not one of autonomous-agent's tools" in err

    # 2. A golden set of requests the models never train on, then the judge report.
    golden = generate_queries(60, seed=977, agent_id=AGENT)
    rows = [
        json.dumps({"query": s.query, "expected_tool": s.tool, "expected_arguments": s.arguments})
        for s in golden
    ]
    rows.insert(3, '{"query": "bad", "expected_tool": "send_email"}')
    code, out, err = run(
        capsys, "import-golden", str(write(tmp_path / "golden.jsonl", rows)), "--agent-id", AGENT
    )
    assert code == 0
    assert "golden.jsonl:4: " in err
    code, out, _ = run(capsys, "judge-report", "--agent-id", AGENT, "--json")
    report = json.loads(out)
    for key in (
        "compared",
        "agreement",
        "precision",
        "recall",
        "cohen_kappa",
        "rank_correlation",
        "tool_confusion",
    ):
        assert key in report
    assert report["compared"] >= 25

    # 3. Build: corrections teach the reviewer's call; train; the gate decides on ground truth.
    code, out, err = run(
        capsys, "build-dataset", "--agent-id", AGENT, "--name", "reviewed", "--min-reward", "0.7"
    )
    assert code == 0, err
    code, out, _ = run(capsys, "dataset-info", "--name", "reviewed")
    assert int(field(out, "Corrected Examples")) == corrected
    tuned = train(capsys, "reviewed")
    code, out, err = run(capsys, "promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active")
    assert code == 0, out + err
    assert field(out, "Gate") == "passed"
    assert field(out, "Gate Basis").startswith("ground truth first")

    # 4. A candidate that learned the fooled judge's mistakes is refused on ground truth.
    # They answer other requests than the reviewed ones (a person's verdict would keep them out).
    reviewed = {truth[item["id"]].query for item in items}
    fresh = [s for s in generate_queries(120, seed=53, agent_id=AGENT) if s.query not in reviewed][:80]
    poison = [episode_line(i, s, right=False, tag="poison", day=8, score=0.95) for i, s in enumerate(fresh)]
    assert run(capsys, "import-episodes", str(write(tmp_path / "poison.jsonl", poison)))[0] == 0
    code, out, err = run(
        capsys, "build-dataset", "--agent-id", AGENT, "--name", "poisoned", "--since", "2026-02-08T00:00:00Z",
        "--min-reward", "0.9",
    )  # fmt: skip
    assert code == 0, err
    poisoned = train(capsys, "poisoned")
    code, out, err = run(
        capsys, "promote-model", "--agent-id", AGENT, "--model-name", poisoned, "--mark-active"
    )
    assert code == 1
    assert field(out, "Gate") == "refused"
    assert "on ground truth" in field(out, "Reason")
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    active = [v for v in json.loads(out) if v["active"]]
    assert [v["model_name"] for v in active] == [tuned]

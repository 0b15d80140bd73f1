"""promote-model, list-models, rollback and evaluate end to end: ``lightning.cli.main([...])`` on the
default SQLite store, the local model server (real ``openai`` SDK) and the Kubernetes API stand-in
(real ``kubernetes`` client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.domain.dataset import DatasetManifest, RewardStats
from lightning.domain.episode import Action, Episode, Label, State
from lightning.domain.model import ModelVersion
from lightning.domain.training import TrainingRun
from tests.standins.kubernetes_api import container_env

AGENT = "autonomous-agent"
NS = "mcp-agents"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")


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


def seed(model: str, *, n: int = 60) -> None:
    """What earlier loop steps leave behind: labeled episodes, a dataset with a validation split, a run."""
    from lightning.agent.queries import generate_queries

    c = Container(get_settings())
    samples = generate_queries(n, seed=23)
    episodes = [
        Episode(
            id=f"ep-{i:03d}",
            agent_id=AGENT,
            state=State(query=s.query),
            action=Action(tool=s.tool, arguments=dict(s.arguments)),
            reward=0.95,
            labeled=True,
            label=Label(source="human", score=0.95, expected_tool=s.tool, tool_correct=True),
        )
        for i, s in enumerate(samples)
    ]
    c.episodes.add(episodes)
    c.datasets.put(
        DatasetManifest(
            name="autonomous-agent-v1",
            agent_id=AGENT,
            episode_ids=[e.id for e in episodes[: n // 2]],
            validation_episode_ids=[e.id for e in episodes[n // 2 : n // 2 + 10]],
            content_sha256="d" * 64,
            reward=RewardStats(avg=0.95, min=0.95, max=0.95),
            token_count=4321,
        )
    )
    c.runs.create_or_get(
        TrainingRun(
            id="run-e2e",
            agent_id=AGENT,
            dataset_name="autonomous-agent-v1",
            dataset_sha256="d" * 64,
            base_model="local-base",
            provider="local",
            idempotency_key="e2e",
            state="succeeded",
            job_id="ftjob-e2e",
            fine_tuned_model=model,
        )
    )


def test_promote_gates_activates_and_rolls_out_then_rollback(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
    kubernetes_api: Any,
) -> None:
    tuned = model_server_tuned_model
    kubernetes_api.add_deployment(NS, AGENT, env={"ENABLE_EPISODE_CAPTURE": "true"})
    seed(tuned)

    code, out, err = run(capsys, "promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active")

    assert code == 0, out + err
    assert "Gate: passed" in out
    # The seeded episodes carry human labels: the gate's figures are ground truth, and say so.
    assert "Baseline (local-base): ground truth: tool accuracy" in out
    assert "Candidate: ground truth: tool accuracy" in out
    assert "(n=30)" in out, out  # 10 validation + the 20 labeled episodes the dataset does not hold
    assert ") (n=" not in out, out  # each figure says its n once
    assert "Lineage: run run-e2e → dataset autonomous-agent-v1" in out
    assert "Status: active" in out
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {
        "ENABLE_EPISODE_CAPTURE": "true",
        "USE_TUNED_MODEL": "true",
        "TUNED_MODEL_NAME": tuned,
    }

    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    assert code == 0
    versions = json.loads(out)
    assert [(v["version"], v["status"], v["active"]) for v in versions] == [(1, "active", True)]
    assert versions[0]["decision"]["promote"] is True
    candidate, baseline = versions[0]["decision"]["candidate"], versions[0]["decision"]["baseline"]
    assert candidate["ground_truth"]["source"] == "ground_truth"
    assert candidate["ground_truth"]["n"] > 0  # the seeded episodes' labels are a person's
    assert (
        candidate["ground_truth"]["tool_accuracy"]["value"]
        >= baseline["ground_truth"]["tool_accuracy"]["value"]
    )

    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT)
    assert "v1" in out
    assert tuned in out

    # A second promote of the same model changes nothing and does not restart the agent again.
    patches = sum(r["method"] == "PATCH" for r in kubernetes_api.requests)
    code, out, _ = run(capsys, "promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active")
    assert code == 0
    assert "already the active version" in out
    assert sum(r["method"] == "PATCH" for r in kubernetes_api.requests) == patches

    code, out, err = run(capsys, "rollback", "--agent-id", AGENT)
    assert code == 0, err
    assert "To: base model (local-base)" in out
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {
        "ENABLE_EPISODE_CAPTURE": "true",
        "USE_TUNED_MODEL": "false",
    }
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    assert [(v["status"], v["active"]) for v in json.loads(out)] == [("rolled_back", False)]


def test_a_rollout_that_never_becomes_available_is_reverted(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
    kubernetes_api: Any,
) -> None:
    tuned = model_server_tuned_model
    kubernetes_api.add_deployment(NS, AGENT, env={"USE_TUNED_MODEL": "false"})
    kubernetes_api.fail_when_env = {"TUNED_MODEL_NAME": tuned}
    seed(tuned)

    code, out, _ = run(
        capsys, "promote-model", "--agent-id", AGENT, "--model-name", tuned, "--mark-active", "--force"
    )

    assert code == 1
    assert "Gate: forced (--force)" in out
    assert "progress deadline exceeded" in out
    assert "previous env restored" in out
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {"USE_TUNED_MODEL": "false"}
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    assert [(v["status"], v["active"]) for v in json.loads(out)] == [("failed", False)]


def test_rbac_refusal_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
    kubernetes_api: Any,
) -> None:
    kubernetes_api.add_deployment(NS, AGENT, env={})
    kubernetes_api.forbidden = True
    seed(model_server_tuned_model)
    code, _, err = run(
        capsys,
        "promote-model",
        "--agent-id",
        AGENT,
        "--model-name",
        model_server_tuned_model,
        "--mark-active",
        "--force",
    )
    assert code == 1
    line = one_error(err)
    assert "403 Forbidden" in line
    assert "get and patch on deployments.apps" in line


def test_without_a_cluster_the_local_agent_follows_the_registry(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    seed(model_server_tuned_model)
    code, out, err = run(
        capsys,
        "promote-model",
        "--agent-id",
        AGENT,
        "--model-name",
        model_server_tuned_model,
        "--mark-active",
        "--json",
    )
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["action"] == "promoted"
    assert "follows the model registry" in outcome["message"]


def test_dry_run_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
    kubernetes_api: Any,
) -> None:
    kubernetes_api.add_deployment(NS, AGENT, env={})
    seed(model_server_tuned_model)
    code, out, _ = run(
        capsys,
        "promote-model",
        "--agent-id",
        AGENT,
        "--model-name",
        model_server_tuned_model,
        "--mark-active",
        "--dry-run",
    )
    assert code == 0
    assert "dry run, nothing changed" in out
    assert "Baseline (local-base)" in out
    assert not [r for r in kubernetes_api.requests if r["method"] == "PATCH"]
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    assert json.loads(out) == []


def test_unknown_model_is_refused_without_force(
    capsys: pytest.CaptureFixture[str], use_model_server: Any
) -> None:
    code, _, err = run(
        capsys, "promote-model", "--agent-id", AGENT, "--model-name", "ft:nope", "--mark-active"
    )
    assert code == 2
    assert "--force" in one_error(err)
    code, _, err = run(
        capsys, "promote-model", "--agent-id", AGENT, "--model-name", "ft:nope", "--mark-active", "--force"
    )
    assert code == 3  # the model server does not serve it: nothing is rolled out
    assert "ft:nope" in one_error(err)


def test_unknown_agent_and_nothing_to_roll_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list-models", "--agent-id", "no-such-agent")
    assert code == 3
    one_error(err)
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT)
    assert code == 0
    assert "no model versions" in out
    code, _, err = run(capsys, "rollback", "--agent-id", AGENT)
    assert code == 2
    assert "nothing to roll back" in one_error(err)


def test_rollback_to_a_named_version(capsys: pytest.CaptureFixture[str], kubernetes_api: Any) -> None:
    kubernetes_api.add_deployment(NS, AGENT, env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:two"})
    models = Container(get_settings()).models
    for number, name in ((1, "ft:one"), (2, "ft:two")):
        version, _ = models.register(
            ModelVersion(
                id=f"{AGENT}:v{number}", agent_id=AGENT, version=number, model_name=name, deployment_name=name
            )
        )
        models.update(version.model_copy(update={"status": "deployed", "promoted_at": version.created_at}))
        models.activate(AGENT, version.id)

    code, out, err = run(capsys, "rollback", "--agent-id", AGENT, "--to", "v1")

    assert code == 0, err
    assert f"From: {AGENT}:v2 (ft:two)" in out
    assert f"To: {AGENT}:v1 (ft:one)" in out
    assert container_env(kubernetes_api.deployment(NS, AGENT)) == {
        "USE_TUNED_MODEL": "true",
        "TUNED_MODEL_NAME": "ft:one",
    }
    code, out, _ = run(capsys, "list-models", "--agent-id", AGENT, "--json")
    assert [(v["version"], v["status"], v["active"]) for v in json.loads(out)] == [
        (2, "rolled_back", False),
        (1, "active", True),
    ]
    code, _, err = run(capsys, "rollback", "--agent-id", AGENT, "--to", "v9")
    assert code == 3
    assert "list-models" in one_error(err)


def test_evaluate_compares_models_on_generated_requests(
    capsys: pytest.CaptureFixture[str],
    use_model_server: Any,
    model_server_tuned_model: str,
) -> None:
    tuned = model_server_tuned_model
    code, out, err = run(
        capsys,
        "evaluate",
        "--agent-id",
        AGENT,
        "--model",
        "local-base",
        "--model",
        tuned,
        "--generate",
        "40",
        "--seed",
        "5",
        "--json",
    )
    assert code == 0, err
    base, candidate = json.loads(out)["models"]
    assert base["examples"] == candidate["examples"] == 40
    # Generated requests carry their known answers: these are ground truth, with intervals.
    assert candidate["ground_truth"]["n"] == 40
    assert candidate["ground_truth"]["tool_accuracy"] > base["ground_truth"]["tool_accuracy"]
    low, high = candidate["ground_truth"]["tool_accuracy_ci"]
    assert low <= candidate["ground_truth"]["tool_accuracy"] <= high
    assert candidate["judge"]["source"] == "judge"
    code, out, _ = run(capsys, "evaluate", "--agent-id", AGENT, "--model", tuned, "--generate", "10")
    assert code == 0
    for metric in (
        "Tool Selection Accuracy (ground truth)",
        "Argument Exact Match (ground truth)",
        "Average Reward Score (judge-estimated)",
        "Error Rate (observed)",
    ):
        assert metric in out


def test_evaluate_queries_file(
    capsys: pytest.CaptureFixture[str], use_model_server: Any, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"query": "Analyze customer churn for Q4 2025", "tool": "analyze_churn", "arguments": {"period": "Q4 2025"}}\n'
        "Generate a sales report for the West region for Q3 2025\n"
    )
    code, out, err = run(
        capsys, "evaluate", "--agent-id", AGENT, "--model", "local-base", "--queries", str(queries), "--json"
    )
    assert code == 0, err
    [evaluated] = json.loads(out)["models"]
    assert evaluated["examples"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "ok"}\n{"query": ""}\n')
    code, _, err = run(
        capsys, "evaluate", "--agent-id", AGENT, "--model", "local-base", "--queries", str(bad)
    )
    assert code == 2
    assert "line 2" in one_error(err)
    code, _, err = run(
        capsys, "evaluate", "--agent-id", AGENT, "--model", "local-base", "--dataset", "missing"
    )
    assert code == 3

"""Benchmark promotion: registry writes/reads, gate evaluation throughput, and one Kubernetes rollout.

Run: ``.venv/bin/python bench/bench_promotion.py``. Prints one JSON object as its last line:

- ``registry_register_per_s`` / ``registry_activate_per_s``: SqliteModelRegistry writes (1,000 versions);
- ``registry_list_ms``: ``list`` of 1,000 versions (what ``list-models`` reads);
- ``gate_requests_per_s``: ``evaluate_model`` with the rubric evaluator and an in-process ChatModel (the
  service's own overhead; a real model's latency adds to it);
- ``gate_requests_per_s_model_server``: the same through the ``openai`` SDK against the local model
  server (in this process: client and server share the GIL), when the ChatModel adapter is installed;
  ``model_server_first_request_s``: the first request before it, which loads the model;
- ``rollout_s``: one KubernetesRollout.roll_out against the apps/v1 stand-in (real ``kubernetes`` client).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.kubernetes.rollout import KubernetesRollout
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.models import SqliteModelRegistry
from lightning.agent.queries import generate_queries
from lightning.domain.model import EvalRequest, ModelVersion
from lightning.ports.bundles import EvaluationPorts
from lightning.ports.chat import ToolCallChoice
from lightning.services.evaluation import EvalSet, evaluate_model
from tests.fakes.chat import OneByOne

AGENT = "autonomous-agent"


class _Oracle(OneByOne):
    def __init__(self, truth: dict[str, Any]) -> None:
        self.truth = truth

    def choose_tool(
        self, *, model: str, system_prompt: str, tools: list[dict[str, Any]], query: str
    ) -> ToolCallChoice:
        sample = self.truth[query]
        return ToolCallChoice(model=model, tool=sample.tool, arguments=dict(sample.arguments))


def bench_registry(directory: Path, n: int = 1000) -> dict[str, float]:
    registry = SqliteModelRegistry(SqliteDatabase(directory / "bench.db"))
    started = time.perf_counter()
    for i in range(1, n + 1):
        registry.register(ModelVersion(id=f"{AGENT}:v{i}", agent_id=AGENT, version=i, model_name=f"ft:m{i}"))
    register_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(1, 201):
        registry.activate(AGENT, f"v{i}")
    activate_s = time.perf_counter() - started
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        registry.list(AGENT)
        timings.append(time.perf_counter() - started)
    return {
        "registry_register_per_s": round(n / register_s, 1),
        "registry_activate_per_s": round(200 / activate_s, 1),
        "registry_list_ms": round(statistics.median(timings) * 1000, 2),
    }


def bench_gate(n: int = 2000) -> dict[str, float]:
    agent = YamlAgentRegistry().get(AGENT)
    samples = generate_queries(n, seed=3)
    truth = {s.query: s for s in samples}
    requests = [
        EvalRequest(query=s.query, expected_tool=s.tool, expected_arguments=dict(s.arguments))
        for s in truth.values()
    ]
    started = time.perf_counter()
    oracle = EvaluationPorts(chat=_Oracle(truth), evaluator=RubricEvaluator())
    evaluate_model(model="oracle", agent=agent, eval_set=EvalSet(requests), ports=oracle)
    figures = {
        "gate_requests": len(requests),
        "gate_requests_per_s": round(len(requests) / (time.perf_counter() - started), 1),
    }
    try:
        from lightning.adapters.modelserver.server import start_server
        from lightning.adapters.openai.chat import OpenAIChatModel
        from lightning.adapters.openai.client import OpenAIEndpoint
    except ImportError:
        return figures
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(data_dir=Path(data_dir))
        try:
            chat = OpenAIChatModel.connect(OpenAIEndpoint(provider="local", base_url=server.base_url))
            subset = requests[:200]
            ports = EvaluationPorts(chat=chat, evaluator=RubricEvaluator())
            started = time.perf_counter()  # the first request loads the model: reported apart
            evaluate_model(model="local-base", agent=agent, eval_set=EvalSet(requests[200:201]), ports=ports)
            figures["model_server_first_request_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            evaluate_model(model="local-base", agent=agent, eval_set=EvalSet(subset), ports=ports)
            figures["gate_requests_per_s_model_server"] = round(
                len(subset) / (time.perf_counter() - started), 1
            )
        finally:
            server.stop()
    return figures


def bench_rollout() -> dict[str, float]:
    from tests.standins.kubernetes_api import start

    server, state, url = start()
    try:
        state.add_deployment("mcp-agents", AGENT, env={}, replicas=3)
        rollout = KubernetesRollout.connect(api_server=url, poll_interval=0.01)
        started = time.perf_counter()
        result = rollout.roll_out(
            namespace="mcp-agents",
            deployment=AGENT,
            env={"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:x"},
        )
        assert result.ok, result.message
        return {"rollout_s": round(time.perf_counter() - started, 3)}
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        figures: dict[str, Any] = {"bench": "promotion"}
        figures.update(bench_registry(Path(directory)))
        figures.update(bench_gate())
        figures.update(bench_rollout())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

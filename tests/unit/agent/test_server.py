"""The agent over HTTP (Starlette TestClient): the workshop's bodies, errors as JSON-RPC, spans, episodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from lightning.agent.core import AnalyticsAgent
from lightning.agent.models import ModelSelector
from lightning.agent.queries import WORKSHOP_QUERIES, workshop_samples
from lightning.agent.server import create_app
from lightning.capture import CapturePolicy, EpisodeCapture
from lightning.domain.agent import AgentDefinition
from lightning.domain.errors import TransientProviderError
from lightning.ports.chat import ToolCallChoice
from lightning.ports.episodes import EpisodeQuery
from tests.fakes.episodes import InMemoryEpisodeStore
from tests.unit.agent.conftest import OracleChat


def body(query: str, request_id: str = "1", **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "analyze_query", "arguments": {"query": query, **arguments}},
    }


class Harness:
    def __init__(
        self, definition: AgentDefinition, oracle: OracleChat, tmp_path: Path, *, capture: bool
    ) -> None:
        self.store = InMemoryEpisodeStore()
        policy = CapturePolicy(flush_seconds=0.05)
        self.capture = (
            EpisodeCapture.start(self.store, spool_dir=tmp_path / "spool", policy=policy, close_at_exit=False)
            if capture
            else EpisodeCapture.disabled()
        )
        self.agent = AnalyticsAgent(
            definition=definition,
            chat=oracle,
            models=ModelSelector(agent_id=definition.id, base_model="local-base"),
            capture=self.capture,
        )
        self.oracle = oracle

    def episodes(self) -> list[Any]:
        assert self.capture.flush()
        return list(self.store.query(EpisodeQuery(order="oldest")))


@pytest.fixture
def harness(
    definition: AgentDefinition, oracle: OracleChat, tmp_path: Path
) -> Iterator[tuple[Harness, TestClient]]:
    h = Harness(definition, oracle, tmp_path, capture=True)
    with TestClient(create_app(h.agent)) as client:
        yield h, client


def answer_of(response: Any) -> tuple[dict[str, Any], bool]:
    result = response.json()["result"]
    return json.loads(result["content"][0]["text"]), result["isError"]


def test_the_workshop_queries_answer_and_land_as_episodes(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    for sample in workshop_samples():
        response = client.post("/message", json=body(sample.query, request_id="abc"))
        assert response.status_code == 200
        assert response.json()["id"] == "abc"
        answer, is_error = answer_of(response)
        assert not is_error
        assert (answer["tool"], answer["arguments"]) == (sample.tool, sample.arguments)
        assert answer["model_version"] == "local-base"
        assert answer["result"] == response.json()["result"]["structuredContent"]["result"]
    episodes = h.episodes()
    assert [e.state.query for e in episodes] == list(WORKSHOP_QUERIES)
    first = episodes[0].to_document()
    assert first["agent_id"] == "autonomous-agent"
    assert first["action"] == {"tool": "analyze_churn", "arguments": {"period": "Q4 2025"}}
    assert {"period", "churn_rate", "at_risk_customers"} <= set(first["result"])
    assert first["reward"] is None
    assert first["labeled"] is False
    assert first["model_version"] == "local-base"
    assert first["latency_ms"] > 0
    assert first["error"] is None
    assert first["response"].startswith("Churn for Q4 2025")
    assert first["state"]["context"] == {"request_id": "abc"}
    # The model saw the registered prompt and tool schemas.
    call = h.oracle.calls[0]
    assert call["system_prompt"] == h.agent.definition.system_prompt
    assert [t["function"]["name"] for t in call["tools"]] == h.agent.definition.tool_names


def test_episode_ids_are_returned_and_stable(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    answer, _ = answer_of(client.post("/message", json=body(WORKSHOP_QUERIES[0])))
    (episode,) = h.episodes()
    assert answer["episode_id"] == episode.id


def test_caller_context_is_recorded_and_redacted(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    client.post(
        "/message", json=body(WORKSHOP_QUERIES[2], context={"user": "analyst@contoso.com", "team": "bi"})
    )
    (episode,) = h.episodes()
    assert episode.state.context["team"] == "bi"
    assert "contoso" not in json.dumps(episode.to_document())


def test_capture_off_answers_the_same_and_stores_nothing(
    definition: AgentDefinition, oracle: OracleChat, tmp_path: Path
) -> None:
    h = Harness(definition, oracle, tmp_path, capture=False)
    with TestClient(create_app(h.agent)) as client:
        answer, is_error = answer_of(client.post("/message", json=body(WORKSHOP_QUERIES[0])))
    assert not is_error
    assert answer["tool"] == "analyze_churn"
    assert answer["episode_id"] is None
    assert not list(h.store.query(EpisodeQuery()))


def test_failures_are_tool_errors_with_captured_episodes(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    h.oracle.scripted["down"] = TransientProviderError("cannot reach the model server", provider="local")
    h.oracle.scripted["bad args"] = ToolCallChoice(model="m", tool="top_products", arguments={"n": 500})
    h.oracle.scripted["chatty"] = ToolCallChoice(model="m", tool=None, content="I think churn is high.")
    h.oracle.scripted["made up"] = ToolCallChoice(model="m", tool="delete_customers", arguments={})
    for query in ("down", "bad args", "chatty", "made up"):
        response = client.post("/message", json=body(query))
        assert response.status_code == 200
        answer, is_error = answer_of(response)
        assert is_error
        assert answer["error"]
        assert answer["model_version"] == "local-base"
    down, bad, chatty, made_up = h.episodes()
    assert "cannot reach" in (down.error or "")
    assert down.action.tool is None
    assert bad.action.tool == "top_products"
    assert "n:" in (bad.error or "")
    assert "metric" in (bad.error or "")
    assert bad.result is None
    assert chatty.response == "I think churn is high."
    assert "without calling a tool" in (chatty.error or "")
    assert "unknown tool" in (made_up.error or "")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", -32700),
        (b"", -32700),
        (b'{"jsonrpc": "2.0", "id": 1}', None),
        (b'{"foo": 1}', None),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]', None),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}', None),
        (b'"just a string"', None),
    ],
)
def test_malformed_json_rpc_gets_a_json_rpc_error_not_a_500(
    harness: tuple[Harness, TestClient], payload: bytes, code: int | None
) -> None:
    _, client = harness
    response = client.post("/message", content=payload, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert isinstance(error["code"], int)
    assert error["message"]
    if code is not None:
        assert error["code"] == code


def test_protocol_errors(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    unknown_method = client.post("/message", json={"jsonrpc": "2.0", "id": 7, "method": "tools/explode"})
    assert unknown_method.status_code == 200
    assert unknown_method.json()["error"]["code"] == -32601
    for params in ({"name": "no_such_tool", "arguments": {}}, {"name": "analyze_query", "arguments": {}}):
        response = client.post(
            "/message", json={"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": params}
        )
        assert response.status_code == 200
        assert response.json()["result"]["isError"] is True
    empty_query = client.post("/message", json=body(""))
    assert empty_query.json()["result"]["isError"] is True
    assert not h.episodes()  # requests the agent never ran are not episodes
    assert client.get("/message").status_code == 405
    assert client.get("/message").json()["error"]["code"] == -32600
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == 404


def test_initialize_and_tools_list_show_the_registered_schemas(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    init = client.post(
        "/message",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert init.json()["result"]["serverInfo"]["name"] == "autonomous-agent"
    tools = {
        t["name"]: t
        for t in client.post("/message", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).json()[
            "result"
        ]["tools"]
    }
    assert set(tools) == {"analyze_query", *h.agent.definition.tool_names}
    for spec in h.agent.definition.tools:
        schema = tools[spec.name]["inputSchema"]
        assert sorted(schema["required"]) == sorted(spec.required)
        for name, prop in spec.parameters["properties"].items():
            exposed = schema["properties"][name]
            assert exposed["type"] == prop["type"]
            for key in ("enum", "minimum", "maximum"):
                assert exposed.get(key) == prop.get(key), (spec.name, name, key)


def test_the_five_tools_can_be_called_directly(harness: tuple[Harness, TestClient]) -> None:
    _, client = harness
    ok = client.post(
        "/message",
        json={
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "sales_forecast", "arguments": {"horizon_months": 3}},
        },
    )
    result = ok.json()["result"]
    assert result["isError"] is False
    assert len(result["structuredContent"]["forecast"]) == 3
    bad = client.post(
        "/message",
        json={
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "analyze_churn", "arguments": {"period": "someday"}},
        },
    )
    assert bad.json()["result"]["isError"] is True
    assert "not understood" in bad.json()["result"]["content"][0]["text"]


def test_health_and_readiness(harness: tuple[Harness, TestClient]) -> None:
    h, client = harness
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "agent_id": "autonomous-agent",
        "model_version": "local-base",
        "model_source": "base",
        "capture": True,
    }
    assert client.get("/readyz").status_code == 200
    h.capture.close()
    assert client.get("/readyz").status_code == 503


# --- telemetry -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> InMemoryExporterHandle:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return InMemoryExporterHandle(exporter)


class InMemoryExporterHandle:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def take(self) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        self.exporter.clear()
        return spans


def test_spans_carry_model_version_agent_tool_and_episode(
    harness: tuple[Harness, TestClient], spans: InMemoryExporterHandle
) -> None:
    from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope

    h, client = harness
    spans.take()
    answer, _ = answer_of(client.post("/message", json=body(WORKSHOP_QUERIES[1])))
    h.oracle.scripted["down"] = TransientProviderError("model down", provider="local")
    client.post("/message", json=body("down"))
    finished = spans.take()
    requests = [
        s for s in finished if s.kind == trace.SpanKind.SERVER and s.name == "tools/call analyze_query"
    ]
    assert len(requests) == 2
    ok, failed = requests
    expected = {
        "model_version": "local-base",
        "agent_id": "autonomous-agent",
        "tool": "sales_report",
        "episode_id": answer["episode_id"],
    }
    assert {k: ok.attributes.get(k) for k in expected} == expected
    assert failed.status.status_code == trace.StatusCode.ERROR
    tool_spans = [s for s in finished if s.name == "tool sales_report"]
    assert tool_spans
    assert tool_spans[0].attributes["model_version"] == "local-base"
    # How Application Insights sees them: a SERVER span is a `requests` row, custom attributes are
    # customDimensions, and a tool error makes success false (the workshop's ErrorRate).
    envelope = _convert_span_to_envelope(ok)
    assert envelope.data.base_type == "RequestData"
    assert envelope.data.base_data.properties["model_version"] == "local-base"
    assert envelope.data.base_data.properties["agent_id"] == "autonomous-agent"
    assert envelope.data.base_data.success is True
    assert _convert_span_to_envelope(failed).data.base_data.success is False


def test_http_level_refusals_are_json_rpc_errors_too(harness: tuple[Harness, TestClient]) -> None:
    _, client = harness
    huge = client.post("/message", json=body("x" * 5_000_000))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == -32600
    # curl -d sends a form content-type; the body is still JSON-RPC and gets answered.
    form = client.post(
        "/message",
        content=json.dumps(body(WORKSHOP_QUERIES[0])),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200
    assert form.json()["result"]["isError"] is False
    not_json = client.post("/message", content=b"query=churn", headers={"content-type": "text/plain"})
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == -32700


def test_the_approval_agent_serves_with_its_own_prompt(oracle: OracleChat, tmp_path: Path) -> None:
    from lightning.adapters.registry.yaml_registry import YamlAgentRegistry

    approval = YamlAgentRegistry().get("approval-agent")
    h = Harness(approval, oracle, tmp_path, capture=True)
    with TestClient(create_app(h.agent)) as client:
        answer, is_error = answer_of(client.post("/message", json=body(WORKSHOP_QUERIES[3])))
        assert client.get("/healthz").json()["agent_id"] == "approval-agent"
    assert not is_error
    assert answer["agent_id"] == "approval-agent"
    assert answer["arguments"] == {"risk_level": "high"}
    assert oracle.calls[0]["system_prompt"] == approval.system_prompt
    (episode,) = h.episodes()
    assert episode.agent_id == "approval-agent"


def test_a_failing_tool_is_an_error_span_with_the_tool_once(
    harness: tuple[Harness, TestClient], spans: InMemoryExporterHandle
) -> None:
    h, client = harness
    spans.take()
    h.oracle.scripted["bad period"] = ToolCallChoice(
        model="m", tool="analyze_churn", arguments={"period": "someday"}
    )
    client.post("/message", json=body("bad period"))
    finished = spans.take()
    with_tool = [s for s in finished if s.kind == trace.SpanKind.INTERNAL and s.attributes.get("tool")]
    assert [s.name for s in with_tool] == ["tool analyze_churn"]
    assert with_tool[0].status.status_code == trace.StatusCode.ERROR
    (analyze,) = [s for s in finished if s.name == "analyze_query"]
    assert analyze.status.status_code == trace.StatusCode.ERROR
    assert analyze.attributes["model_version"] == "local-base"

"""Simulated traffic: send the workshop's JSON-RPC bodies to an agent and summarize what came back.

``simulate(url, samples, concurrency=…)`` posts one ``tools/call analyze_query``
per sample to ``<url>/message`` — exactly the body of the workshop's PowerShell
loop — from a small thread pool, and returns a ``TrafficSummary``: sent, ok,
tool errors, transport failures, latency p50/p95/p99, tool distribution, model
versions seen and, when the samples carry the expected tool (generated ones do),
how often the agent chose it. Used by ``simulate-traffic`` and ``bench/bench_agent.py``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from lightning.agent.queries import QuerySample, generate_queries, workshop_samples
from lightning.domain.errors import InvalidInput


class TrafficRequest(BaseModel):
    """One request to send; ``expected_tool`` is known for generated and workshop queries."""

    query: str
    expected_tool: str | None = None
    expected_arguments: dict[str, Any] | None = None


Outcome = Literal[
    "ok",  # a JSON-RPC result without isError
    "tool_error",  # a JSON-RPC result with isError (the model or the tool failed; captured as an episode)
    "failed",  # no JSON-RPC result: connection error, HTTP error or a JSON-RPC error object
]


class TrafficResult(BaseModel):
    query: str
    outcome: Outcome
    status: int | None = None
    latency_ms: float
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    model_version: str | None = None
    response: str | None = Field(default=None, description="The agent's one-line answer.")
    error: str | None = None
    expected_tool: str | None = None


class TrafficSummary(BaseModel):
    sent: int
    ok: int
    tool_errors: int = Field(description="Answers with isError (the agent or its model failed the request).")
    failed: int = Field(
        description="Requests without a JSON-RPC result (connection, HTTP or protocol errors)."
    )
    seconds: float
    requests_per_second: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    tools: dict[str, int]
    model_versions: dict[str, int]
    tool_accuracy: float | None = Field(description="Share of answers with the expected tool, when known.")
    first_errors: list[str] = Field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return round(ordered[rank - 1], 3)


def message_url(agent_url: str) -> str:
    url = agent_url.rstrip("/")
    return url if url.endswith("/message") else f"{url}/message"


def workshop_body(
    query: str, *, request_id: str | None = None, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON-RPC body of the workshop's loop (``context`` added only when given)."""
    arguments: dict[str, Any] = {"query": query}
    if context:
        arguments["context"] = context
    return {
        "jsonrpc": "2.0",
        "id": request_id or str(uuid.uuid4()),
        "method": "tools/call",
        "params": {"name": "analyze_query", "arguments": arguments},
    }


def requests_from_samples(samples: Iterable[QuerySample]) -> list[TrafficRequest]:
    return [
        TrafficRequest(query=s.query, expected_tool=s.tool, expected_arguments=s.arguments) for s in samples
    ]


def load_requests(path: Path) -> list[TrafficRequest]:
    """Queries from a file: plain text (one per line), a JSON list, or JSONL (``{"query": …, "tool"?: …}``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read --queries {path}: {exc.strerror}", field="queries") from None
    stripped = text.strip()
    items: list[Any]
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--queries {path} is not valid JSON: {exc}", field="queries") from None
    elif stripped.startswith("{"):
        items = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInput(
                        f"--queries {path} line {number} is not JSON: {exc}", field="queries"
                    ) from None
    else:
        items = [line.strip() for line in stripped.splitlines() if line.strip() and not line.startswith("#")]
    requests = []
    for item in items:
        if isinstance(item, str):
            requests.append(TrafficRequest(query=item))
        elif isinstance(item, dict) and isinstance(item.get("query"), str):
            requests.append(
                TrafficRequest(
                    query=item["query"],
                    expected_tool=item.get("tool") or item.get("expected_tool"),
                    expected_arguments=item.get("arguments"),
                )
            )
        else:
            raise InvalidInput(
                f"--queries {path}: every entry needs a query string, got {item!r}", field="queries"
            )
    if not requests:
        raise InvalidInput(f"--queries {path} holds no queries", field="queries")
    return requests


def choose_requests(
    *, queries_file: Path | None, generate: int | None, seed: int, agent_id: str
) -> list[TrafficRequest]:
    if queries_file is not None and generate is not None:
        raise InvalidInput("pass either --queries FILE or --generate N, not both", field="queries")
    if queries_file is not None:
        return load_requests(queries_file)
    if generate is not None:
        if generate < 1:
            raise InvalidInput(f"--generate must be at least 1, got {generate}", field="generate")
        return requests_from_samples(generate_queries(generate, seed=seed, agent_id=agent_id))
    return requests_from_samples(workshop_samples())


def send_one(
    client: httpx.Client, url: str, request: TrafficRequest, context: dict[str, Any] | None = None
) -> TrafficResult:
    started = time.perf_counter()
    status: int | None = None
    try:
        response = client.post(url, json=workshop_body(request.query, context=context))
        status = response.status_code
        latency = (time.perf_counter() - started) * 1000.0
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        latency = (time.perf_counter() - started) * 1000.0
        return TrafficResult(
            query=request.query,
            outcome="failed",
            status=status,
            latency_ms=latency,
            error=f"{type(exc).__name__}: {exc}",
            expected_tool=request.expected_tool,
        )
    base = {
        "query": request.query,
        "status": status,
        "latency_ms": latency,
        "expected_tool": request.expected_tool,
    }
    if not isinstance(body, dict) or "result" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else f"HTTP {status}"
        return TrafficResult(outcome="failed", error=str(message), **base)
    result = body["result"] or {}
    answer: dict[str, Any] = result.get("structuredContent") or {}
    if not answer:
        try:
            answer = json.loads(result.get("content", [{}])[0].get("text", "{}"))
        except (ValueError, IndexError, AttributeError):
            answer = {}
    is_error = bool(result.get("isError"))
    error_text = answer.get("error") if isinstance(answer, dict) else None
    if is_error and not error_text:
        content = result.get("content") or [{}]
        error_text = content[0].get("text") if isinstance(content[0], dict) else "tool error"
    return TrafficResult(
        outcome="tool_error" if is_error else "ok",
        tool=answer.get("tool") if isinstance(answer, dict) else None,
        arguments=answer.get("arguments") if isinstance(answer, dict) else None,
        model_version=answer.get("model_version") if isinstance(answer, dict) else None,
        response=answer.get("response") if isinstance(answer, dict) else None,
        error=error_text if is_error else None,
        **base,
    )


def simulate(
    agent_url: str,
    requests: Sequence[TrafficRequest],
    *,
    concurrency: int = 4,
    timeout: float = 60.0,
    delay: float = 0.0,
    context: dict[str, Any] | None = None,
    on_result: Callable[[TrafficResult], None] | None = None,
    api_key: str | None = None,
) -> tuple[TrafficSummary, list[TrafficResult]]:
    """Send every request (``concurrency`` at a time) and summarize; ``api_key`` goes in ``api-key``."""
    if concurrency < 1:
        raise InvalidInput(f"--concurrency must be at least 1, got {concurrency}", field="concurrency")
    url = message_url(agent_url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[TrafficResult] = []
    started = time.perf_counter()
    headers = {"api-key": api_key} if api_key else None
    with httpx.Client(timeout=timeout, limits=limits, headers=headers) as client:

        def task(request: TrafficRequest) -> TrafficResult:
            result = send_one(client, url, request, context)
            if delay > 0:
                time.sleep(delay)
            return result

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="traffic") as pool:
            for result in pool.map(task, requests):
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return summarize(results, time.perf_counter() - started), results


def summarize(results: Sequence[TrafficResult], seconds: float) -> TrafficSummary:
    outcomes = Counter(r.outcome for r in results)
    answered = [r for r in results if r.outcome != "failed"]
    latencies = [r.latency_ms for r in answered]
    judged = [r for r in answered if r.expected_tool is not None]
    accuracy = sum(1 for r in judged if r.tool == r.expected_tool) / len(judged) if judged else None
    return TrafficSummary(
        sent=len(results),
        ok=outcomes["ok"],
        tool_errors=outcomes["tool_error"],
        failed=outcomes["failed"],
        seconds=round(seconds, 3),
        requests_per_second=round(len(results) / seconds, 2) if seconds > 0 else 0.0,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99),
        tools=dict(Counter(r.tool or "(none)" for r in answered).most_common()),
        model_versions=dict(Counter(r.model_version for r in answered if r.model_version).most_common()),
        tool_accuracy=round(accuracy, 4) if accuracy is not None else None,
        first_errors=[f"{r.query[:60]} → {r.error}"[:240] for r in results if r.error][:5],
    )

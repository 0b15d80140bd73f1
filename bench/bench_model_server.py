"""Benchmark the local model server: fine-tuning time and chat-completion latency/throughput over HTTP.

Starts ``python -m lightning.cli serve-models`` in a subprocess on a free port
(so client and server do not share a GIL), then, through the ``openai`` SDK:

- uploads 1,000 and 10,000 generated examples (+10 % validation), runs a job
  on each with auto hyperparameters and measures wall time from job creation to
  ``succeeded`` (and the trainer's own time), plus base-vs-tuned accuracy;
- sends chat completions with the agent's five tools to the tuned model:
  sequentially (p50/p99 latency, requests/s) and from 4 concurrent clients;
- measures how the tuned model generalizes (``generalization``, ground truth: known answers,
  base and tuned through the same chat endpoint) for two training regimes — ``ground_truth``
  (the 1,000 generated examples above) and ``loop`` (what the loop first trains on: local-base's
  own answers to 1,000 generated requests that the rubric accepts) — on (i) held-out generated
  requests with the agent's tools and system prompt, (ii) the hand-written held-out paraphrases
  (``lightning/agent/data/heldout_queries.jsonl``), (iii) both with other tool descriptions and
  no system prompt, (iv) both with a tool set never seen in training (renamed tools).

Run: ``.venv/bin/python bench/bench_model_server.py [--quick]``. Prints one JSON
object as its last line.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.modelserver.text import ToolDef
from lightning.adapters.modelserver.zeroshot import ZeroShotModel
from lightning.agent.heldout import heldout_samples
from lightning.agent.queries import QuerySample
from lightning.agent.tools import run_tool
from lightning.domain.episode import Episode
from lightning.domain.errors import InvalidInput
from tests.integration.model_server.data import agent_definition, jsonl, split_samples
from tests.integration.model_server.variants import UNSEEN_NAMES, rephrased_tools, unseen_tools

AGENT = agent_definition()
TOOLS: list[Any] = AGENT.openai_tools()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(home: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lightning.cli", "serve-models", "--port", str(port)],
        env={**os.environ, "LIGHTNING_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    client = OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=5)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.models.list()
            return process, base_url
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)


def _train(client: OpenAI, n: int, train_samples: list[QuerySample] | None = None) -> dict[str, Any]:
    generated, valid_samples = split_samples(n, max(10, n // 10), seed=n)
    train_samples = generated if train_samples is None else train_samples
    train_bytes, valid_bytes = jsonl(train_samples, AGENT), jsonl(valid_samples, AGENT)
    started = time.perf_counter()
    training_file = client.files.create(file=("train.jsonl", io.BytesIO(train_bytes)), purpose="fine-tune").id
    validation_file = client.files.create(
        file=("valid.jsonl", io.BytesIO(valid_bytes)), purpose="fine-tune"
    ).id
    uploaded = time.perf_counter()
    job = client.fine_tuning.jobs.create(
        model="local-base",
        training_file=training_file,
        validation_file=validation_file,
        suffix="bench",
        seed=1,
    )
    created = time.perf_counter()
    while job.status not in {"succeeded", "failed", "cancelled"}:
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    finished = time.perf_counter()
    if job.status != "succeeded":
        raise SystemExit(f"job {job.id} {job.status}: {job.error}")
    evaluation: dict[str, Any] = job.evaluation  # type: ignore[attr-defined]
    return {
        "examples": len(train_samples),
        "validation_examples": len(valid_samples),
        "file_mb": round(len(train_bytes) / 1e6, 1),
        "upload_seconds": round(uploaded - started, 2),
        "job_seconds": round(finished - created, 2),
        "trainer_seconds": evaluation["seconds"],
        "hyperparameters": job.hyperparameters.model_dump(),
        "trained_tokens": job.trained_tokens,
        "base_tool_accuracy": evaluation["base_tool_accuracy"],
        "tuned_tool_accuracy": evaluation["tuned_tool_accuracy"],
        "base_argument_exact_match": evaluation["base_argument_exact_match"],
        "tuned_argument_exact_match": evaluation["tuned_argument_exact_match"],
        "model": job.fine_tuned_model,
    }


def _loop_examples(n: int) -> list[QuerySample]:
    """local-base's answers to ``n`` generated requests that the rubric accepts (the loop's first dataset)."""
    base, rubric = ZeroShotModel(), RubricEvaluator()
    tools = [ToolDef.from_openai(tool) for tool in TOOLS]
    kept = []
    for index, sample in enumerate(split_samples(n, 0, seed=n)[0]):
        answer = base.predict(sample.query, tools, system_prompt=AGENT.system_prompt)
        if answer.tool is None:
            continue
        try:
            result, error = run_tool(answer.tool, answer.arguments), None
        except InvalidInput as exc:
            result, error = None, str(exc)
        episode = Episode.model_validate(
            {
                "id": f"loop-{index}",
                "agent_id": AGENT.id,
                "state": {"query": sample.query},
                "action": {"tool": answer.tool, "arguments": answer.arguments},
                "result": result,
                "error": error,
            }
        )
        if rubric.evaluate(episode, AGENT).score >= 0.7:
            kept.append(QuerySample(query=sample.query, tool=answer.tool, arguments=answer.arguments))
    return kept


def _tool_accuracy(
    client: OpenAI,
    model: str,
    samples: list[QuerySample],
    tools: list[Any],
    system_prompt: str | None,
    rename: dict[str, str] | None = None,
) -> float:
    """Share of requests whose first tool call names the known tool (ground truth)."""
    right = 0
    for sample in samples:
        messages: list[Any] = [{"role": "user", "content": sample.query}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        calls = client.chat.completions.create(model=model, messages=messages, tools=tools).choices[0]
        name = calls.message.tool_calls[0].function.name if calls.message.tool_calls else None
        right += name == (rename[sample.tool] if rename else sample.tool)
    return round(right / len(samples), 4)


def _generalization(client: OpenAI, model: str, generated: list[QuerySample]) -> dict[str, Any]:
    """Base vs tuned ground-truth tool accuracy in the four settings, on both request sets."""
    held_out = heldout_samples()
    settings: dict[str, tuple[list[Any], str | None, dict[str, str] | None]] = {
        "agent_tools_and_prompt": (TOOLS, AGENT.system_prompt, None),
        "other_descriptions_no_prompt": (rephrased_tools(AGENT), None, None),
        "unseen_tools": (unseen_tools(AGENT), None, UNSEEN_NAMES),
    }
    figures: dict[str, Any] = {}
    for setting, (tools, prompt, rename) in settings.items():
        for name, samples in (("generated", generated), ("heldout", held_out)):
            base = _tool_accuracy(client, "local-base", samples, tools, prompt, rename)
            tuned = _tool_accuracy(client, model, samples, tools, prompt, rename)
            figures[f"{setting}.{name}"] = {
                "n": len(samples),
                "base": base,
                "tuned": tuned,
                "tuned_minus_base": round(tuned - base, 4),
            }
    return figures


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _chat_load(base_url: str, model: str, queries: list[str], clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    per_client = [queries[index::clients] for index in range(clients)]

    def run(batch: list[str]) -> None:
        try:
            _run(batch)
        except BaseException as exc:
            errors.append(exc)

    def _run(batch: list[str]) -> None:
        client = OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=30)
        mine = []
        for query in batch:
            started = time.perf_counter()
            reply = client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": AGENT.system_prompt},
                    {"role": "user", "content": query},
                ],
                tools=TOOLS,
            )
            mine.append(time.perf_counter() - started)
            if reply.choices[0].finish_reason != "tool_calls" and model != "local-base":
                raise AssertionError(f"{model} answered {query!r} without a tool call")
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(batch,)) for batch in per_client]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
    }


def main(quick: bool) -> dict[str, Any]:
    sizes = [1_000] if quick else [1_000, 10_000]
    requests = 300 if quick else 2_000
    with tempfile.TemporaryDirectory() as home:
        process, base_url = _start(Path(home))
        try:
            client = OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=300)
            training = [_train(client, n) for n in sizes]
            model = training[0]["model"]
            loop = _train(client, 1_000, _loop_examples(1_000))
            # Requests neither model trained on (both trained on the 1,000 requests of seed 1000).
            seen = {sample.query.lower() for sample in split_samples(1_000, 0, seed=1_000)[0]}
            generated = [s for s in split_samples(0, 600, seed=4242)[1] if s.query.lower() not in seen][:300]
            generalization = {
                "source": "ground_truth",
                "ground_truth": {"examples": 1_000, **_generalization(client, model, generated)},
                "loop": {"examples": loop["examples"], **_generalization(client, loop["model"], generated)},
            }
            queries = [sample.query for sample in split_samples(0, requests, seed=99)[1]]
            queries = (queries * (requests // max(len(queries), 1) + 1))[:requests]
            _chat_load(base_url, model, queries[:50], 1)  # warm-up: load the model, fill caches
            sequential = _chat_load(base_url, model, queries, 1)
            concurrent = _chat_load(base_url, model, queries, 4)
            base = _chat_load(base_url, "local-base", queries[: requests // 2], 1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return {
        "benchmark": "model_server",
        "cpus": os.cpu_count(),
        "training": training,
        "chat_tuned_sequential": sequential,
        "chat_tuned_concurrent": concurrent,
        "chat_base_sequential": base,
        "generalization": generalization,
    }


if __name__ == "__main__":
    result = main(quick="--quick" in sys.argv[1:])
    print(json.dumps(result))

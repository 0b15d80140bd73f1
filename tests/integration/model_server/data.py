"""Fine-tuning JSONL built from the agent's query generator, as the dataset builder writes it.

Each line: system prompt, user request, assistant with a native ``tool_calls``
entry, the tool result and a final answer, plus the agent's ``tools`` — the
shape of issue 4's datasets. Used by the model-server tests and
``bench/bench_model_server.py``.
"""

from __future__ import annotations

import json
from typing import Any

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import QuerySample, generate_queries
from lightning.domain.agent import AgentDefinition


def agent_definition(agent_id: str = "autonomous-agent") -> AgentDefinition:
    return YamlAgentRegistry().get(agent_id)


def example_line(sample: QuerySample, agent: AgentDefinition, index: int) -> dict[str, Any]:
    call_id = f"call_{index:06d}"
    return {
        "messages": [
            {"role": "system", "content": agent.system_prompt},
            {"role": "user", "content": sample.query},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": sample.tool, "arguments": json.dumps(sample.arguments)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"ok": True})},
            {"role": "assistant", "content": f"Here is the {sample.tool.replace('_', ' ')} you asked for."},
        ],
        "tools": agent.openai_tools(),
    }


def jsonl(samples: list[QuerySample], agent: AgentDefinition | None = None) -> bytes:
    agent = agent or agent_definition()
    lines = (json.dumps(example_line(sample, agent, index)) for index, sample in enumerate(samples))
    return ("\n".join(lines) + "\n").encode()


def split_samples(
    n_train: int, n_valid: int, *, seed: int = 7
) -> tuple[list[QuerySample], list[QuerySample]]:
    """Disjoint train/validation samples (different generator seeds; identical requests removed)."""
    train = generate_queries(n_train, seed=seed)
    seen = {sample.query.lower() for sample in train}
    valid = [
        sample
        for sample in generate_queries(n_valid * 2, seed=seed + 1000)
        if sample.query.lower() not in seen
    ]
    return train, valid[:n_valid]

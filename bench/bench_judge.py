"""How often the rubric judge is right: precision and recall of its accept decision, on known answers.

Ground truth, not a judge's estimate. For each request with a known answer the benchmark
builds episodes the way the loop sees them (the tool really runs on the sample data, so
results and errors are real):

- the known answer itself;
- a wrong tool (another tool, called with its defaults);
- a wrong argument (one argument changed to another valid value);
- the local base model's own answer (``local-base``, in process, with the agent's tools and
  system prompt) — right or wrong, as it happens.

An episode is *correct* when its call is the known answer (``heldout.calls_agree``: the same
tool, and arguments that give the same result). The judge *accepts* it when its score is at
least the accept threshold (0.7). Reported separately for

- ``generated``: requests from ``generate_queries`` (fixed seed; the rubric was developed on
  other seeds of the same generator), and
- ``heldout``: the hand-written paraphrases of ``lightning/agent/data/heldout_queries.jsonl``,

each with precision, recall (95 % Wilson intervals), the accept rate per kind of episode, and
the judge's tool-expectation accuracy (its ``expected_tool`` vs the known tool, per request;
no expectation counts as wrong). ``--baseline REF`` also scores the rubric and agent YAML of a
git revision (e.g. ``main``) on the same episodes, for a before/after.

Run: ``.venv/bin/python bench/bench_judge.py [--generated 400] [--seed 9001] [--baseline main]``.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.modelserver.text import ToolDef
from lightning.adapters.modelserver.zeroshot import ZeroShotModel
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.heldout import calls_agree, heldout_samples
from lightning.agent.queries import TOOL_DEFAULTS, TOOLS, QuerySample, generate_queries
from lightning.agent.tools import run_tool
from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode
from lightning.domain.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
AGENT_ID = "autonomous-agent"
ACCEPT = 0.7
_PERIODS = ["Q1 2025", "Q3 2025", "Q2 2026", "2024", "2025", "H1 2026", "March 2026", "last month",
            "last year", "this year", "year to date", "the last 6 months", "last quarter"]  # fmt: skip
_OTHER_VALUES: dict[str, list[Any]] = {
    "region": ["north", "south", "east", "west", "all"],
    "metric": ["revenue", "units", "margin"],
    "risk_level": ["low", "medium", "high", "all"],
    "period": _PERIODS,
}


@dataclass(frozen=True)
class Case:
    """One episode to judge and whether its call is the known answer."""

    kind: str  # "known_answer" | "wrong_tool" | "wrong_argument" | "base_model"
    sample: QuerySample
    episode: Episode
    correct: bool


def _episode(index: int, query: str, tool: str | None, arguments: dict[str, Any]) -> Episode:
    result: Any = None
    error: str | None = None
    if tool is not None:
        try:
            result = run_tool(tool, arguments)
        except InvalidInput as exc:
            error = str(exc)
    return Episode.model_validate(
        {
            "id": f"judge-{index:06d}",
            "agent_id": AGENT_ID,
            "state": {"query": query, "context": {}},
            "action": {"tool": tool, "arguments": arguments},
            "result": result,
            "error": error,
        }
    )


def _other_value(name: str, value: Any, rng: random.Random) -> Any:
    if name in _OTHER_VALUES:
        return rng.choice([v for v in _OTHER_VALUES[name] if v != value])
    if name == "n":
        return rng.choice([v for v in (1, 3, 5, 7, 10, 12, 15, 20, 25, 50) if v != value])
    if name == "horizon_months":
        return rng.choice([v for v in (1, 2, 3, 4, 5, 6, 9, 12, 18, 24) if v != value])
    raise ValueError(f"no perturbation for argument {name}")


def build_cases(samples: list[QuerySample], agent: AgentDefinition, seed: int) -> list[Case]:
    """The four kinds of episode for every sample, deterministic per seed."""
    rng = random.Random(seed)
    base = ZeroShotModel()
    tools = [ToolDef.from_openai(tool) for tool in agent.openai_tools()]
    cases: list[Case] = []

    def add(kind: str, sample: QuerySample, tool: str | None, arguments: dict[str, Any]) -> None:
        episode = _episode(len(cases), sample.query, tool, arguments)
        correct = calls_agree(tool, arguments, sample.tool, sample.arguments) and episode.error is None
        cases.append(Case(kind=kind, sample=sample, episode=episode, correct=correct))

    for sample in samples:
        add("known_answer", sample, sample.tool, dict(sample.arguments))
        wrong_tool = rng.choice([tool for tool in TOOLS if tool != sample.tool])
        add("wrong_tool", sample, wrong_tool, dict(TOOL_DEFAULTS[wrong_tool]))
        name = rng.choice(sorted(sample.arguments))
        changed = {**sample.arguments, name: _other_value(name, sample.arguments[name], rng)}
        add("wrong_argument", sample, sample.tool, changed)
        prediction = base.predict(sample.query, tools, system_prompt=agent.system_prompt)
        add("base_model", sample, prediction.tool, dict(prediction.arguments))
    return cases


def _wilson(hits: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    z = 1.959964
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def _ratio(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def measure(evaluator: Any, agent: AgentDefinition, cases: list[Case]) -> dict[str, Any]:
    """Precision/recall of the accept decision, accept rate per kind, tool-expectation accuracy."""
    started = time.perf_counter()
    verdicts = [evaluator.evaluate(case.episode, agent) for case in cases]
    seconds = time.perf_counter() - started
    accepted = [verdict.score >= ACCEPT for verdict in verdicts]
    tp = sum(1 for case, ok in zip(cases, accepted, strict=True) if ok and case.correct)
    fp = sum(1 for case, ok in zip(cases, accepted, strict=True) if ok and not case.correct)
    fn = sum(1 for case, ok in zip(cases, accepted, strict=True) if not ok and case.correct)
    kinds: dict[str, dict[str, Any]] = {}
    for kind in ("known_answer", "wrong_tool", "wrong_argument", "base_model"):
        rows = [(case, ok) for case, ok in zip(cases, accepted, strict=True) if case.kind == kind]
        correct = sum(1 for case, _ in rows if case.correct)
        kinds[kind] = {
            "episodes": len(rows),
            "correct": correct,
            "accepted": sum(1 for _, ok in rows if ok),
            "accepted_when_correct": sum(1 for case, ok in rows if ok and case.correct),
            "accepted_when_wrong": sum(1 for case, ok in rows if ok and not case.correct),
        }
    # Tool expectation: one verdict per request (the known-answer episode's).
    expectations = [
        (case.sample.tool, verdict.expected_tool)
        for case, verdict in zip(cases, verdicts, strict=True)
        if case.kind == "known_answer"
    ]
    right = sum(1 for truth, expected in expectations if truth == expected)
    unmatched = sum(1 for _, expected in expectations if expected is None)
    return {
        "episodes": len(cases),
        "correct_episodes": tp + fn,
        "accepted": tp + fp,
        "precision": _ratio(tp, tp + fp),
        "precision_ci95": _wilson(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "recall_ci95": _wilson(tp, tp + fn),
        "by_kind": kinds,
        "requests": len(expectations),
        "tool_expectation_accuracy": _ratio(right, len(expectations)),
        "tool_expectation_ci95": _wilson(right, len(expectations)),
        "no_expectation": unmatched,
        "episodes_per_s": round(len(cases) / seconds) if seconds else None,
    }


def baseline_from_git(ref: str) -> tuple[Any, AgentDefinition, str]:
    """The rubric module and agent definition as they are at git revision ``ref``."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    source = show("lightning/adapters/evaluators/rubric.py")
    agent = AgentDefinition.model_validate(yaml.safe_load(show(f"lightning/agents/{AGENT_ID}.yaml")))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rubric_baseline.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("rubric_baseline", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load the rubric of {ref}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return module.RubricEvaluator(), agent, str(module.VERSION)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=400, help="generated requests (>= 300)")
    parser.add_argument(
        "--seed", type=int, default=9001, help="generator seed (the rubric is developed on others)"
    )
    parser.add_argument("--baseline", default=None, help="also score the rubric of this git revision")
    args = parser.parse_args()

    agent = YamlAgentRegistry().get(AGENT_ID)
    sets = {
        "generated": build_cases(generate_queries(args.generated, seed=args.seed), agent, seed=args.seed),
        "heldout": build_cases(heldout_samples(), agent, seed=args.seed),
    }
    evaluator = RubricEvaluator()
    figures: dict[str, Any] = {
        "bench": "judge",
        "source": "ground_truth",
        "accept_threshold": ACCEPT,
        "seed": args.seed,
        "after": {
            "rubric": evaluator.version,
            **{name: measure(evaluator, agent, cases) for name, cases in sets.items()},
        },
    }
    if args.baseline:
        old, old_agent, version = baseline_from_git(args.baseline)
        figures["before"] = {
            "revision": args.baseline,
            "rubric": version,
            **{name: measure(old, old_agent, cases) for name, cases in sets.items()},
        }
    figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

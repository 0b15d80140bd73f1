"""Ground truth in the loop, measured on known answers: the judge, the review queue, reviews, the gate.

Every figure here is ground truth — requests whose right call is known — except where a key says
``judge``. Nothing is mocked: SQLite stores in a temporary LIGHTNING_HOME, the local model server (in
process) answering as ``local-base`` and really fine-tuning, the rubric judge, and the project's own
services (label_batch, review_queue, label_episode, build_dataset, start_training, the gate).

Per seed (``--seeds``, default 5):

1. traffic: ``generate_queries`` requests (``--traffic``) plus hand-written held-out paraphrases the
   templates were not written from (``lightning/agent/heldout.py``, split per seed into traffic,
   golden set and evaluation set, never shared), answered by ``local-base`` and captured as episodes;
2. the rubric labels them; its precision and recall (accept = score >= 0.7, correct = the call is the
   known answer) are measured separately on generated and paraphrased traffic;
3. review queue: how often its top 30 are the judge's mistakes, against the base rate of mistakes;
4. reviews: a simulated reviewer who knows the answers labels the top 0, 10, 30 and 100 of the queue
   (corrections and confirmations); after each, a dataset is built, ``local-base`` fine-tuned, and
   tuned vs base ground-truth tool accuracy measured on an evaluation set of generated and
   paraphrased requests no dataset contains;
5. the gate, with a golden set imported: a candidate trained on the right answers vs ``local-base``
   (a truly better candidate: the gate must promote it), and a candidate trained to agree with a
   judge exactly where that judge is wrong — the judge's preferred call on every traffic request —
   vs the truly better one as the active model (the gate must refuse it). The poisoning judge is the
   rubric as it was before this work (``rubric-1``, read from git at ``FLAWED_JUDGE_REF``: the judge
   whose mistakes the issue reports); the same experiment with today's rubric is reported too (it is
   wrong on few requests, so its "poisoned" candidate is close to the truly better one). Beside every
   decision: what a judge-only gate, judging with the poisoning judge, would have decided.

Run: ``.venv/bin/python bench/bench_ground_truth.py [--seeds 5] [--traffic 300] [--quick]``.
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.adapters.modelserver.server import start_server
from lightning.agent.heldout import calls_agree, heldout_samples
from lightning.agent.queries import TOOL_DEFAULTS, TOOLS, QuerySample, generate_queries
from lightning.bootstrap import Container, promotion_policy
from lightning.config import Settings
from lightning.domain.episode import Action, Episode, State
from lightning.domain.finetune_format import normalize_query
from lightning.domain.golden import GoldenExample
from lightning.domain.model import EvaluationSummary, GateRule, decide_promotion
from lightning.domain.training import Hyperparameters
from lightning.ports.bundles import EvaluationPorts
from lightning.ports.episodes import EpisodeQuery
from lightning.services.datasets import BuildRequest, build_dataset
from lightning.services.evaluation import EvalSet, evaluate_model
from lightning.services.labeling import (
    HumanLabel,
    LabelBatchRequest,
    LabelingPolicy,
    label_batch,
    label_episode,
)
from lightning.services.promotion import gate_requests
from lightning.services.review import ReviewPolicy, ReviewRequest, review_queue
from lightning.services.training import StartTraining, poll_training, start_training

AGENT = "autonomous-agent"
ACCEPT = 0.7
FLAWED_JUDGE_REF = "08c9c3f"  # main before the ground-truth work: rubric-1, the judge the issue measured
REVIEWS = (0, 10, 30, 100)
QUEUE_TOP = 30


def wilson(hits: int, n: int) -> dict[str, Any]:
    from lightning.domain.model import Rate

    rate = Rate.of(hits, n)
    return {"value": rate.value, "low": rate.low, "high": rate.high, "n": n}


def split_heldout(seed: int) -> tuple[list[QuerySample], list[QuerySample], list[QuerySample]]:
    """The hand-written paraphrases, shuffled per seed into traffic / golden / evaluation (disjoint)."""
    samples = heldout_samples()
    random.Random(seed).shuffle(samples)
    third = len(samples) // 3
    return samples[:third], samples[third : 2 * third], samples[2 * third :]


def distinct(samples: list[QuerySample], exclude: set[str]) -> list[QuerySample]:
    out: list[QuerySample] = []
    for sample in samples:
        key = normalize_query(sample.query)
        if key not in exclude:
            exclude.add(key)
            out.append(sample)
    return out


class Run:
    """One seed's world: a LIGHTNING_HOME, the container, the chat model and the provider."""

    def __init__(self, home: Path, model_url: str) -> None:
        self.settings = Settings(
            lightning_home=home,
            lightning_trainer="local",
            lightning_model_server=model_url,
            rollout_enabled=False,
        )
        self.c = Container(self.settings)
        self.agent = self.c.agents.get(AGENT)
        self.evaluator = self.c.evaluator("rubric")
        self.chat = self.c.chat

    def answer(self, model: str, samples: list[QuerySample]) -> list[Action]:
        actions = []
        for sample in samples:
            choice = self.chat.choose_tool(
                model=model,
                system_prompt=self.agent.system_prompt,
                tools=self.agent.openai_tools(),
                query=sample.query,
            )
            actions.append(Action(tool=choice.tool, arguments=dict(choice.arguments)))
        return actions

    def train(self, name: str, *, human_only: bool = False) -> str:
        build_dataset(
            BuildRequest(
                agent_id=AGENT, name=name, min_reward=ACCEPT, validation_split=0.0, human_only=human_only
            ),
            self.c.dataset_ports(),
        )
        return self.fine_tune(name)

    def fine_tune(self, dataset: str) -> str:
        ports = self.c.training_ports()
        run = start_training(
            StartTraining(
                agent_id=AGENT,
                dataset_name=dataset,
                base_model="local-base",
                hyperparameters=Hyperparameters(n_epochs=3),
            ),
            ports,
        ).run
        deadline = time.monotonic() + 300
        while not run.terminal:
            if time.monotonic() > deadline:
                raise SystemExit(f"fine-tune of {dataset} did not finish")
            time.sleep(0.2)
            run, _ = poll_training(run, runs=ports.runs, provider=ports.provider)
        if run.state != "succeeded" or not run.fine_tuned_model:
            raise SystemExit(f"fine-tune of {dataset} ended {run.state}: {run.error}")
        return run.fine_tuned_model

    def accuracy(self, model: str, samples: list[QuerySample]) -> dict[str, Any]:
        """Ground-truth tool accuracy and call agreement of ``model`` on ``samples``."""
        actions = self.answer(model, samples)
        tool = sum(a.tool == s.tool for a, s in zip(actions, samples, strict=True))
        call = sum(
            calls_agree(a.tool, a.arguments, s.tool, s.arguments)
            for a, s in zip(actions, samples, strict=True)
        )
        return {"tool_accuracy": wilson(tool, len(samples)), "call_accuracy": wilson(call, len(samples))}


def overall(figures: dict[str, Any]) -> float:
    """Tool accuracy over every part of an evaluation (weighted by each part's size)."""
    hits = sum(part["tool_accuracy"]["value"] * part["tool_accuracy"]["n"] for part in figures.values())
    return hits / sum(part["tool_accuracy"]["n"] for part in figures.values())


class Judge:
    """An evaluator with the agent definition it scores against (an older rubric has its own YAML)."""

    def __init__(self, evaluator: Any, agent: Any, name: str) -> None:
        self.evaluator, self.agent, self.name = evaluator, agent, name
        self.version = getattr(evaluator, "version", name)

    def evaluate(self, episode: Episode, agent: Any) -> Any:
        del agent
        return self.evaluator.evaluate(episode, self.agent)

    def evaluate_many(self, items: list[tuple[Episode, Any]]) -> list[Any]:
        outcomes: list[Any] = []
        for episode, _ in items:
            try:
                outcomes.append(self.evaluate(episode, None))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def flawed_judge() -> Judge:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_judge import baseline_from_git

    evaluator, agent, version = baseline_from_git(FLAWED_JUDGE_REF)
    return Judge(evaluator, agent, version)


def preferred_call(judge: Judge, sample: QuerySample) -> tuple[str, dict[str, Any]]:
    """The call ``judge`` scores highest among the right one and its near misses (ties: the right one)."""
    candidates: list[tuple[str, dict[str, Any]]] = [(sample.tool, dict(sample.arguments))]
    for tool in TOOLS:
        if tool != sample.tool:
            candidates.append((tool, dict(TOOL_DEFAULTS[tool])))
    candidates.append((sample.tool, dict(TOOL_DEFAULTS[sample.tool])))
    best, best_score = candidates[0], -1.0
    for tool, arguments in candidates:
        episode = Episode(
            id="probe",
            agent_id=AGENT,
            state=State(query=sample.query),
            action=Action(tool=tool, arguments=arguments),
        )
        score = judge.evaluate(episode, None).score
        if score > best_score + 1e-9:
            best, best_score = (tool, arguments), score
    return best


def train_on_calls(run: Run, name: str, rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Fine-tune local-base on (query, tool, arguments) rows, through a dataset of confirmed episodes."""
    from lightning.domain.episode import Label

    episodes = [
        Episode(
            id=f"{name}-{i:04d}",
            agent_id=f"{AGENT}",
            state=State(query=query),
            action=Action(tool=tool, arguments=arguments),
            result={"ok": True},
        ).with_label(Label(source="human", score=1.0, expected_tool=tool, expected_arguments=arguments))
        for i, (query, tool, arguments) in enumerate(rows)
    ]
    trainer = Run(run.settings.lightning_home / name, run.settings.lightning_model_server)
    trainer.c.episodes.add(episodes)
    return trainer.train(name, human_only=True)


def gate(run: Run, candidate: str, baseline: str, judge: Judge) -> dict[str, Any]:
    # Golden requests only: both candidates trained on the traffic, so its episodes are not held out.
    policy = promotion_policy(run.settings).model_copy(update={"recent_episodes": 0})
    eval_set = gate_requests(
        agent_id=AGENT, dataset_name=None, ports=run.c.promotion_ports("rubric"), policy=policy
    )
    ports = EvaluationPorts(chat=run.chat, evaluator=run.evaluator)
    summaries: list[EvaluationSummary] = [
        evaluate_model(model=model, agent=run.agent, eval_set=eval_set, ports=ports)
        for model in (candidate, baseline)
    ]
    truth_first = decide_promotion(
        *summaries, rule=GateRule(tolerance=policy.tolerance, min_golden=policy.min_golden)
    )
    judge_ports = EvaluationPorts(chat=run.chat, evaluator=judge)  # type: ignore[arg-type]
    judged: list[EvaluationSummary] = [
        evaluate_model(model=model, agent=run.agent, eval_set=EvalSet(eval_set.requests), ports=judge_ports)
        for model in (candidate, baseline)
    ]
    judge_only = decide_promotion(*judged, rule=GateRule(tolerance=policy.tolerance, min_golden=10**9))
    return {
        "promote": truth_first.promote,
        "reason": truth_first.reason,
        "judge_only_gate_would_promote": judge_only.promote,
        "candidate_ground_truth_tool_accuracy": summaries[0].ground_truth.tool_accuracy.value,
        "baseline_ground_truth_tool_accuracy": summaries[1].ground_truth.tool_accuracy.value,
        "judge_only_judge": judge.version,
        "candidate_judge_avg_reward": judged[0].judge.avg_reward,
        "baseline_judge_avg_reward": judged[1].judge.avg_reward,
        "ground_truth_n": summaries[0].ground_truth.n,
        "overlap_left_out": eval_set.excluded_overlap,
    }


def one_seed(seed: int, args: argparse.Namespace, model_url: str, root: Path) -> dict[str, Any]:
    run = Run(root / f"seed-{seed}", model_url)
    para_traffic, para_golden, para_eval = split_heldout(seed)
    seen: set[str] = set()
    generated = distinct(generate_queries(args.traffic * 2, seed=1000 + seed, agent_id=AGENT), seen)[
        : args.traffic
    ]
    paraphrased = distinct(para_traffic, seen)
    golden_samples = distinct(generate_queries(200, seed=2000 + seed, agent_id=AGENT), seen)[
        : args.golden
    ] + distinct(para_golden, seen)
    eval_samples = distinct(generate_queries(200, seed=3000 + seed, agent_id=AGENT), seen)[
        : args.evaluation
    ] + distinct(para_eval, seen)
    eval_generated = [s for s in eval_samples if s.style != "heldout"]
    eval_paraphrased = [s for s in eval_samples if s.style == "heldout"]

    # 1. traffic answered by local-base, captured as episodes.
    traffic = generated + paraphrased
    truth = {f"ep-{i:05d}": sample for i, sample in enumerate(traffic)}
    actions = run.answer("local-base", traffic)
    run.c.episodes.add(
        [
            Episode(
                id=episode_id, agent_id=AGENT, state=State(query=s.query), action=action, result={"ok": True}
            )
            for (episode_id, s), action in zip(truth.items(), actions, strict=True)
        ]
    )

    # 2. the judge labels them.
    label_batch(
        LabelBatchRequest(agent_id=AGENT), run.c.labeling_ports("rubric"), LabelingPolicy(min_score=ACCEPT)
    )
    episodes = {e.id: e for e in run.c.episodes.query(EpisodeQuery(agent_id=AGENT))}

    def correct(episode_id: str) -> bool:
        action, sample = episodes[episode_id].action, truth[episode_id]
        return calls_agree(action.tool, action.arguments, sample.tool, sample.arguments)

    judge: dict[str, Any] = {}
    mistakes: set[str] = set()
    for part, members in (("generated", generated), ("paraphrased", paraphrased)):
        ids = [i for i, s in truth.items() if s in members]
        accepted = [i for i in ids if (episodes[i].reward or 0) >= ACCEPT]
        right = [i for i in ids if correct(i)]
        judge[part] = {
            "episodes": len(ids),
            "precision": wilson(sum(correct(i) for i in accepted), len(accepted)),
            "recall": wilson(sum((episodes[i].reward or 0) >= ACCEPT for i in right), len(right)),
        }
        mistakes |= {i for i in ids if ((episodes[i].reward or 0) >= ACCEPT) != correct(i)}

    # 3. the review queue against the base rate of judge mistakes.
    queue = review_queue(
        ReviewRequest(agent_id=AGENT, limit=max(REVIEWS)),
        episodes=run.c.episodes,
        agents=run.c.agents,
        policy=ReviewPolicy(min_reward=ACCEPT),
    )
    top = [item.id for item in queue[:QUEUE_TOP]]
    hit_rate = sum(i in mistakes for i in top) / len(top)
    base_rate = len(mistakes) / len(truth)
    queue_report = {
        "top": QUEUE_TOP,
        "judge_mistakes_in_top": sum(i in mistakes for i in top),
        "hit_rate": round(hit_rate, 4),
        "base_rate": round(base_rate, 4),
        "hit_ratio": round(hit_rate / base_rate, 3) if base_rate else None,
    }

    # 4. reviews from the queue, then build → fine-tune → ground-truth accuracy, cumulatively.
    base_eval = {
        "generated": run.accuracy("local-base", eval_generated),
        "paraphrased": run.accuracy("local-base", eval_paraphrased),
    }
    reviews: list[dict[str, Any]] = []
    done = 0
    for k in REVIEWS if not args.quick else (0, 30):
        for item in queue[done:k]:
            sample = truth[item.id]
            agrees = correct(item.id)
            label_episode(
                HumanLabel(
                    episode_id=item.id,
                    reward=1.0 if agrees else 0.1,
                    reason="simulated reviewer (knows the answer)",
                    labeled_by="simulated-reviewer",
                    expected_tool=sample.tool,
                    expected_arguments=dict(sample.arguments),
                ),
                episodes=run.c.episodes,
                agents=run.c.agents,
                golden=None,
            )
        done = k
        tuned = run.train(f"reviews-{k}")
        after = {
            "generated": run.accuracy(tuned, eval_generated),
            "paraphrased": run.accuracy(tuned, eval_paraphrased),
        }
        reviews.append(
            {
                "reviews": k,
                "tuned": after,
                "tuned_minus_base_points": round(100 * (overall(after) - overall(base_eval)), 1),
            }
        )

    # 5. the gate on a golden set: a truly better candidate, then a judge-poisoned one.
    run.c.golden.put(
        [
            GoldenExample.of(
                agent_id=AGENT, query=s.query, expected_tool=s.tool, expected_arguments=dict(s.arguments)
            )
            for s in golden_samples
        ]
    )
    right_rows = [(s.query, s.tool, dict(s.arguments)) for s in traffic]
    current = Judge(run.evaluator, run.agent, run.evaluator.version)
    flawed = flawed_judge()
    better = train_on_calls(run, "truly-better", right_rows)
    experiments: dict[str, Any] = {}
    for name, poisoner in (("flawed_judge", flawed), ("current_judge", current)):
        rows = [(s.query, *preferred_call(poisoner, s)) for s in traffic]
        wrong = sum(1 for a, b in zip(right_rows, rows, strict=True) if a[1] != b[1] or a[2] != b[2])
        poisoned = train_on_calls(run, f"poisoned-by-{name.replace('_', '-')}", rows)
        experiments[name] = {
            "judge": poisoner.version,
            "judge_preferred_calls_that_are_wrong": wrong,
            "poisoned_vs_truly_better": gate(run, poisoned, better, poisoner),
        }
    return {
        "seed": seed,
        "sizes": {
            "traffic_generated": len(generated),
            "traffic_paraphrased": len(paraphrased),
            "golden": len(golden_samples),
            "evaluation_generated": len(eval_generated),
            "evaluation_paraphrased": len(eval_paraphrased),
        },
        "judge": judge,
        "review_queue": queue_report,
        "base": base_eval,
        "reviews": reviews,
        "gate": {
            "truly_better_vs_base": gate(run, better, "local-base", flawed),
            **experiments,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--traffic", type=int, default=300, help="Generated requests of traffic per seed.")
    parser.add_argument("--golden", type=int, default=40, help="Generated requests in the golden set.")
    parser.add_argument(
        "--evaluation", type=int, default=80, help="Generated requests in the evaluation set."
    )
    parser.add_argument("--quick", action="store_true", help="Reviews 0 and 30 only, 2 seeds.")
    args = parser.parse_args()
    if args.quick:
        args.seeds = min(args.seeds, 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-ground-truth-") as tmp:
        root = Path(tmp)
        server = start_server(data_dir=root / "model-server")
        try:
            seeds = []
            for seed in range(args.seeds):
                result = one_seed(seed, args, server.base_url, root)
                seeds.append(result)
                print(json.dumps(result), flush=True)
        finally:
            server.stop()
    ratios = [s["review_queue"]["hit_ratio"] for s in seeds if s["review_queue"]["hit_ratio"] is not None]
    lift: dict[str, list[float]] = {}
    for s in seeds:
        for row in s["reviews"]:
            lift.setdefault(str(row["reviews"]), []).append(row["tuned_minus_base_points"])
    poisoned = [s["gate"]["flawed_judge"]["poisoned_vs_truly_better"] for s in seeds]
    current = [s["gate"]["current_judge"]["poisoned_vs_truly_better"] for s in seeds]
    better = [s["gate"]["truly_better_vs_base"] for s in seeds]

    def summary(values: list[float]) -> dict[str, Any]:
        return {
            "median": statistics.median(values),
            "mean": round(statistics.fmean(values), 3),
            "all": values,
        }

    def precision_recall(part: str) -> dict[str, Any]:
        return {
            "precision": summary([s["judge"][part]["precision"]["value"] for s in seeds]),
            "recall": summary([s["judge"][part]["recall"]["value"] for s in seeds]),
        }

    out = {
        "benchmark": "ground_truth",
        "source": "ground truth: known answers from the generator and hand-written held-out paraphrases",
        "seeds": len(seeds),
        "judge_rubric": {
            "generated": precision_recall("generated"),
            "paraphrased": precision_recall("paraphrased"),
        },
        "review_queue_hit_ratio": summary(ratios),
        "review_queue_goal_2x_met": all(r >= 2.0 for r in ratios),
        "tuned_minus_base_ground_truth_points_by_reviews": {k: summary(v) for k, v in lift.items()},
        "goal_plus_20_points_with_30_reviews_met": bool(lift.get("30"))
        and statistics.median(lift["30"]) >= 20.0,
        "gate_refuses_candidate_poisoned_by_flawed_judge": f"{sum(not g['promote'] for g in poisoned)}/{len(poisoned)}",
        "gate_refuses_truly_better": f"{sum(not g['promote'] for g in better)}/{len(better)}",
        "judge_only_gate_would_promote_candidate_poisoned_by_flawed_judge": (
            f"{sum(g['judge_only_gate_would_promote'] for g in poisoned)}/{len(poisoned)}"
        ),
        "judge_only_gate_would_refuse_truly_better": (
            f"{sum(not g['judge_only_gate_would_promote'] for g in better)}/{len(better)}"
        ),
        "current_judge_poisoned_candidate": {
            "wrong_preferred_calls": [
                s["gate"]["current_judge"]["judge_preferred_calls_that_are_wrong"] for s in seeds
            ],
            "gate_refused": f"{sum(not g['promote'] for g in current)}/{len(current)}",
            "ground_truth_candidate_minus_active_points": [
                round(
                    100
                    * (g["candidate_ground_truth_tool_accuracy"] - g["baseline_ground_truth_tool_accuracy"]),
                    1,
                )
                for g in current
            ],
        },
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": list(os.getloadavg()),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

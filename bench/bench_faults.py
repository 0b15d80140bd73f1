"""Benchmark the guarantees (docs/guarantees.md) at scale: kills and faults on 100,000 episodes.

Run: ``.venv/bin/python bench/bench_faults.py [--episodes 100000] [--kills 3] [--promotions 20] [--seed 7]``.
Prints one JSON object as its last line. Every figure is ground truth: known inputs, counted in the SQLite
stores and on the stand-ins afterwards. Goal: every count below is zero (and one job per dataset).

1. ``import-episodes`` of N episodes, SIGKILLed ``--kills`` times after a batch picked at random (seeded),
   each time followed by the same command, until one run completes → ``episodes_lost``, ``episodes_duplicated``;
2. 1% of the episodes labeled by a person, then ``label-batch --auto-label`` killed ``--kills`` times after a
   random chunk, then completed → ``human_labels_replaced``, ``auto_labeled_twice``, ``left_unlabeled``;
3. ``build-dataset`` killed before its commit, then run twice → ``datasets_visible_after_kill``, ``datasets``;
4. ``start-training`` killed between the upload and the job's creation, then run twice, against the
   fine-tuning stand-in → ``fine_tune_jobs_per_dataset``;
5. ``--promotions`` forced promotions rolled out through the real ``kubernetes`` client to the apps/v1
   stand-in, each with a random fault after the patch (reads failing, 409, 403, dropped connections,
   a rollout that never becomes available) → ``registry_cluster_disagreements`` (the registry's active
   version does not name what the Deployment runs, and the version does not say ``diverged``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.bootstrap import Container, kubernetes_rollout
from lightning.cli import main as cli
from lightning.config import Settings, get_settings
from lightning.domain.episode import Label
from lightning.ports.episodes import EpisodeQuery
from tests.fakes.datasets import labeled_episode
from tests.faults.killing import kill_at

AGENT = "autonomous-agent"
BATCH = 500  # import batch and label chunk size (the services' defaults)


def _quiet(args: list[str]) -> int:
    """Run a CLI command in-process with its output discarded."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli(args)


def _episodes() -> list[Any]:
    return list(Container(get_settings()).episodes.query(EpisodeQuery(agent_id=AGENT)))


def bench_import_and_label(work: Path, n: int, kills: int, rng: random.Random) -> dict[str, Any]:
    source = work / "episodes.jsonl"
    rewards = [None, None, None]  # unlabeled: label-batch labels them
    with source.open("w") as out:
        for i in range(n):
            out.write(json.dumps(labeled_episode(i, reward=rewards[i % 3]).to_document()) + "\n")
    started = time.perf_counter()
    import_kills = sorted(rng.randrange(1, max(2, n // BATCH)) for _ in range(kills))
    for k in import_kills:
        kill_at(f"import.after_batch:{k}", ["import-episodes", str(source)], marker_dir=work / "faults")
    assert _quiet(["import-episodes", str(source)]) == 0
    import_s = time.perf_counter() - started
    stored = _episodes()
    ids = Counter(e.id for e in stored)
    expected = {f"ep-{i:07d}" for i in range(n)}

    store = Container(get_settings()).episodes
    humans = set(rng.sample(sorted(expected), max(1, n // 100)))
    for episode_id in humans:
        store.save_label(
            episode_id,
            Label(source="human", score=0.05, reason="wrong tool", labeled_by="ana"),
            agent_id=AGENT,
        )
    started = time.perf_counter()
    label_args = ["label-batch", "--agent-id", AGENT, "--auto-label", "--evaluator", "rubric"]
    label_kills = sorted(rng.randrange(1, max(2, n // BATCH // 4)) for _ in range(kills))
    for k in label_kills:
        kill_at(f"label.after_chunk:{k}", label_args, marker_dir=work / "faults")
    assert _quiet(label_args) == 0
    label_s = time.perf_counter() - started
    after = _episodes()
    replaced = sum(1 for e in after if e.id in humans and (e.label is None or e.label.source != "human"))
    twice = sum(1 for e in after if sum(1 for label in e.labels if label.source == "auto") > 1)
    unlabeled = sum(1 for e in after if e.id not in humans and e.label is None)
    return {
        "episodes": n,
        "import_kills_after_batch": import_kills,
        "episodes_lost": len(expected - set(ids)),
        "episodes_duplicated": sum(count - 1 for count in ids.values()) + len(set(ids) - expected),
        "human_labels": len(humans),
        "label_kills_after_chunk": label_kills,
        "human_labels_replaced": replaced,
        "auto_labeled_twice": twice,
        "left_unlabeled": unlabeled,
        "import_s": round(import_s, 1),
        "label_s": round(label_s, 1),
    }


def bench_build_and_train(work: Path) -> dict[str, Any]:
    from tests.integration.training.ft_server import FineTuneServer

    build = ["build-dataset", "--agent-id", AGENT, "--name", "autonomous-agent-v1", "--min-reward", "0.0"]
    kill_at("build.before_commit", build, marker_dir=work / "faults")
    visible_after_kill = len(Container(get_settings()).datasets.list())
    assert _quiet(build) == 0
    assert _quiet(build) == 0
    datasets = Container(get_settings()).datasets.list()

    server = FineTuneServer().start()
    server.file_polls_before_processed = 0
    os.environ["LIGHTNING_MODEL_SERVER"] = server.base_url
    try:
        start = ["start-training", "--agent-id", AGENT, "--dataset-name", "autonomous-agent-v1"]
        start += ["--base-model", "gpt-4o-mini"]
        kill_at("training.before_create_job", start, marker_dir=work / "faults")
        assert _quiet(start) == 0
        assert _quiet(start) == 0
        jobs = server.job_creations()
    finally:
        server.stop()
        del os.environ["LIGHTNING_MODEL_SERVER"]
    runs = Container(get_settings()).runs.list()
    return {
        "datasets_visible_after_kill": visible_after_kill,
        "datasets": len(datasets),
        "fine_tune_jobs_per_dataset": {"autonomous-agent-v1": jobs},
        "training_runs": len(runs),
    }


def bench_rollouts(work: Path, promotions: int, rng: random.Random) -> dict[str, Any]:
    from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
    from lightning.adapters.sqlite.db import SqliteDatabase
    from lightning.adapters.sqlite.models import SqliteModelRegistry
    from lightning.ports.bundles import PromotionPorts
    from lightning.services.promotion import PromotionPolicy, PromotionRequest, promote_model
    from tests.fakes.bundles import NoChat
    from tests.fakes.rollout import RecordingDeployer
    from tests.standins.kubernetes_api import Fault, container_env, start

    server, state, url = start()
    faults = [
        lambda: Fault("GET", status=503, times=3, after_patches=state.patches_applied + 1),
        lambda: Fault("PATCH", status=409, times=2, after_patches=state.patches_applied + 1),
        lambda: Fault("*", status=403, times=2, after_patches=state.patches_applied + 1),
        lambda: Fault("GET", kind="drop", times=2, after_patches=state.patches_applied + 1),
        lambda: Fault("PATCH", kind="apply_then_drop", times=1, after_patches=state.patches_applied + 1),
        lambda: Fault(
            "GET", status=503, times=1000, after_patches=state.patches_applied + 1
        ),  # never readable
    ]
    agents = YamlAgentRegistry()
    agent = agents.get(AGENT)
    state.add_deployment(agent.namespace, agent.deployment_name, env={"USE_TUNED_MODEL": "false"})
    settings = Settings(k8s_api_server=url, rollout_timeout_seconds=8)
    models = SqliteModelRegistry(SqliteDatabase(work / "registry.db"))
    empty = Container(get_settings())
    ports = PromotionPorts(
        agents=agents,
        models=models,
        runs=empty.runs,
        datasets=empty.datasets,
        blobs=empty.blobs,
        episodes=empty.episodes,
        golden=empty.golden,
        chat=NoChat(),
        evaluator=empty.evaluator("rubric"),
        deployer=RecordingDeployer(served_as_is=True),
        rollout=kubernetes_rollout(settings),
    )
    disagreements = diverged = failed = promoted = 0
    kinds: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        for i in range(promotions):
            state.faults = []
            if rng.random() < 0.7:
                choice = rng.randrange(len(faults) + 1)
                if choice == len(faults):
                    state.fail_when_env = {"TUNED_MODEL_NAME": f"ft:bench:{i}"}
                    kinds["never_available"] += 1
                else:
                    state.faults = [faults[choice]()]
                    kinds[f"fault_{choice}"] += 1
            try:
                outcome = promote_model(
                    PromotionRequest(
                        agent_id=AGENT, model_name=f"ft:bench:{i}", mark_active=True, force=True
                    ),
                    ports,
                    PromotionPolicy(),
                )
                action = outcome.action
            except Exception as exc:  # refused before the patch: nothing changed
                action = f"raised {type(exc).__name__}"
            state.faults = []
            state.fail_when_env = {}
            promoted += action == "promoted"
            diverged += action == "diverged"
            failed += action in ("rollout_failed",) or action.startswith("raised")
            active = models.active(AGENT)
            expected = active.served_name if active else None
            observed = container_env(state.deployment(agent.namespace, agent.deployment_name)).get(
                "TUNED_MODEL_NAME"
            )
            if observed != expected and action != "diverged":
                disagreements += 1
    finally:
        server.shutdown()
        server.server_close()
    return {
        "promotions": promotions,
        "faults_injected": dict(sorted(kinds.items())),
        "promoted": promoted,
        "rollout_failed_and_restored": failed,
        "diverged_reported": diverged,
        "registry_cluster_disagreements": disagreements,
        "rollouts_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--promotions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        work = Path(tmp)
        os.environ["LIGHTNING_HOME"] = str(work / "home")
        for name in [n for n in os.environ if n.startswith(("LIGHTNING_STORE", "LIGHTNING_FAULT", "K8S_"))]:
            del os.environ[name]
        figures: dict[str, Any] = {"seed": options.seed, "kills_per_command": options.kills}
        figures.update(bench_import_and_label(work, options.episodes, options.kills, rng))
        figures.update(bench_build_and_train(work))
        figures.update(bench_rollouts(work, options.promotions, rng))
    figures["all_zero"] = (
        figures["episodes_lost"] == figures["episodes_duplicated"] == figures["human_labels_replaced"] == 0
        and figures["auto_labeled_twice"] == figures["left_unlabeled"] == 0
        and figures["datasets_visible_after_kill"] == 0
        and figures["datasets"] == 1
        and max(figures["fine_tune_jobs_per_dataset"].values()) == 1
        and figures["registry_cluster_disagreements"] == 0
    )
    figures["source"] = "ground truth: known inputs counted in the stores and on the stand-ins"
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

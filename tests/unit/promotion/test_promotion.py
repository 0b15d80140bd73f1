"""promote_model, the gate, promote_and_roll_out and rollback on fakes with a scripted ChatModel."""

from __future__ import annotations

import json

import pytest

from lightning.agent.queries import QuerySample, generate_queries
from lightning.domain.dataset import DatasetFile
from lightning.domain.errors import InvalidInput, ProviderError
from lightning.domain.messages import FineTuneDone
from lightning.domain.model import ModelVersion
from lightning.services.promotion import (
    PromotionPolicy,
    PromotionRequest,
    RollbackRequest,
    promote_and_roll_out,
    promote_model,
    rollback,
)
from tests.unit.promotion.conftest import AGENT, FT_MODEL, World, make_run

TARGET = "mcp-agents/autonomous-agent"


def promote(world: World, model: str = FT_MODEL, **flags: object):
    request = PromotionRequest(agent_id=AGENT, model_name=model, promoted_by="alice", **flags)  # type: ignore[arg-type]
    return promote_model(request, *world.args())


def activate_version(world: World, model: str, version: int) -> ModelVersion:
    """An already-promoted version (as an earlier promotion leaves it)."""
    registered, _ = world.models.register(
        ModelVersion(
            id=f"{AGENT}:v{version}", agent_id=AGENT, version=version, model_name=model, status="deployed"
        )
    )
    world.models.update(
        registered.model_copy(update={"deployment_name": model, "promoted_at": registered.created_at})
    )
    return world.models.activate(AGENT, registered.id)


def test_better_model_passes_the_gate_and_rolls_out(world: World) -> None:
    world.chat.wrong_every["local-base"] = 2  # the base model picks a wrong tool half of the time

    outcome = promote(world, mark_active=True)

    assert outcome.action == "promoted"
    decision = outcome.decision
    assert decision is not None
    assert decision.promote
    assert not decision.forced
    assert decision.candidate is not None
    assert decision.baseline is not None
    assert decision.baseline.model == "local-base"
    assert decision.candidate.examples == decision.baseline.examples == 30  # 10 validation + 20 recent
    # The episodes carry auto labels only: every figure is the judge's, and the gate says so.
    assert decision.candidate.ground_truth.n == 0
    assert not decision.ground_truth
    assert decision.reason.startswith("judge-only gate")
    assert decision.candidate.judge.tool_accuracy.value == 1.0
    assert decision.baseline.judge.tool_accuracy.value == 0.5
    assert decision.candidate.judge.avg_reward > decision.baseline.judge.avg_reward
    assert world.rollout.calls == [
        ("mcp-agents", "autonomous-agent", {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": FT_MODEL})
    ]
    active = world.models.active(AGENT)
    assert active is not None
    assert active.model_name == FT_MODEL
    assert active.status == "active"
    assert active.promoted_by == "alice"
    assert active.promoted_at is not None
    assert active.previous_env == {"USE_TUNED_MODEL": None, "TUNED_MODEL_NAME": None}
    assert active.decision == decision
    assert active.evaluation == decision.candidate
    # Lineage: run → dataset name + sha → episode count.
    assert (active.run_id, active.job_id) == ("run-1", "ftjob-run-1")
    assert (active.dataset_name, active.dataset_sha256, active.episode_count) == (
        "autonomous-agent-v1",
        "sha-of-files",
        40,
    )
    assert world.deployer.deployed == [(FT_MODEL, "autonomous-agent-v1")]
    assert outcome.version is not None
    assert outcome.version.deployment_name == FT_MODEL


def test_the_gate_only_replays_held_out_requests(world: World) -> None:
    promote(world, mark_active=True)
    manifest = world.datasets.get("autonomous-agent-v1")
    validation = {world.episodes.get(i).state.query for i in manifest.validation_episode_ids}
    recent = {world.episodes.get(f"ep-{i:04d}").state.query for i in range(40, 60)}
    training = {world.episodes.get(i).state.query for i in manifest.episode_ids}
    for model in (FT_MODEL, "local-base"):
        asked = [query for name, query in world.chat.calls if name == model]
        assert len(asked) == 30
        assert set(asked) == validation | recent
    assert training - (validation | recent), "training-only requests are never replayed"


def test_worse_model_is_refused_and_nothing_rolls_out(world: World) -> None:
    activate_version(world, "ft:local-base:autonomous-agent:good", 1)
    world.chat.wrong_every[FT_MODEL] = 3  # a third of its answers use the wrong tool

    outcome = promote(world, mark_active=True)

    assert outcome.action == "rejected"
    assert outcome.decision is not None
    assert not outcome.decision.promote
    assert "judge-estimated tool accuracy" in outcome.decision.reason
    assert "judge-estimated average reward" in outcome.decision.reason
    assert outcome.decision.baseline is not None
    assert outcome.decision.baseline.model == "ft:local-base:autonomous-agent:good"
    assert world.rollout.calls == []
    rejected = world.models.get(AGENT, FT_MODEL)
    assert rejected.status == "rejected"
    assert not rejected.active
    assert rejected.decision == outcome.decision  # stored with its numbers
    active = world.models.active(AGENT)
    assert active is not None
    assert active.version == 1


def test_slightly_worse_within_tolerance_is_promoted(world: World) -> None:
    world.chat.wrong_every[FT_MODEL] = 30  # 1 wrong of 30: accuracy 0.967, base model 1.0
    world.policy = PromotionPolicy(tolerance=0.05, recent_episodes=20)
    assert promote(world, mark_active=True).action == "promoted"


def test_slightly_worse_beyond_tolerance_is_refused(world: World) -> None:
    world.chat.wrong_every[FT_MODEL] = 30
    world.policy = PromotionPolicy(tolerance=0.0, recent_episodes=20)
    assert promote(world, mark_active=True).action == "rejected"


def test_force_skips_the_gate_and_is_recorded(world: World) -> None:
    world.chat.wrong_every[FT_MODEL] = 2
    outcome = promote(world, mark_active=True, force=True)
    assert outcome.action == "promoted"
    assert outcome.decision is not None
    assert outcome.decision.forced
    assert "alice" in outcome.decision.reason
    assert world.chat.calls == []  # no evaluation at all
    assert world.models.active(AGENT).decision.forced  # type: ignore[union-attr]


def test_without_mark_active_the_version_is_only_deployed(world: World) -> None:
    outcome = promote(world)
    assert outcome.action == "deployed"
    assert "--mark-active" in outcome.message
    assert world.rollout.calls == []
    assert world.models.active(AGENT) is None
    assert world.models.get(AGENT, FT_MODEL).status == "deployed"
    # Marking it active later re-checks the gate and rolls out.
    assert promote(world, mark_active=True).action == "promoted"


def test_azure_deployments_are_named_after_agent_and_version(world: World) -> None:
    world.deployer.served_as_is = False
    world.chat.wrong_every["local-base"] = 2
    outcome = promote(world, mark_active=True)
    assert outcome.action == "promoted"
    assert outcome.version is not None
    assert outcome.version.deployment_name == "autonomous-agent-v1"
    assert {model for model, _ in world.chat.calls} == {"autonomous-agent-v1", "local-base"}
    assert world.rollout.env[TARGET]["TUNED_MODEL_NAME"] == "autonomous-agent-v1"


def test_model_no_run_produced_needs_force(world: World) -> None:
    with pytest.raises(InvalidInput, match="--force"):
        promote(world, "ft:local-base:autonomous-agent:unknown", mark_active=True)
    assert world.models.list(AGENT) == []
    outcome = promote(world, "ft:local-base:autonomous-agent:unknown", mark_active=True, force=True)
    assert outcome.action == "promoted"
    assert outcome.version is not None
    assert outcome.version.run_id is None
    assert outcome.version.dataset_name is None


def test_failed_run_has_nothing_to_promote(world: World) -> None:
    world.runs.create_or_get(make_run("ft:x", state="failed", run_id="run-2"))
    assert (
        promote_and_roll_out(FineTuneDone(run_id="run-2", agent_id=AGENT, state="failed"), *world.args())
        is None
    )
    assert world.models.list(AGENT) == []
    assert world.rollout.calls == []


def test_duplicate_completion_message_rolls_out_once(world: World) -> None:
    message = FineTuneDone(run_id="run-1", agent_id=AGENT, state="succeeded", fine_tuned_model=FT_MODEL)
    first = promote_and_roll_out(message, *world.args())
    second = promote_and_roll_out(message, *world.args())
    assert first is not None
    assert first.action == "promoted"
    assert first.version is not None
    assert first.version.promoted_by == "lightning-loop"
    assert second is not None
    assert second.action == "already_active"
    assert len(world.rollout.calls) == 1
    assert len(world.deployer.deployed) == 1
    assert len(world.models.list(AGENT)) == 1


def test_loop_does_not_retry_a_rejected_version(world: World) -> None:
    world.chat.wrong_every[FT_MODEL] = 2
    message = FineTuneDone(run_id="run-1", agent_id=AGENT, state="succeeded", fine_tuned_model=FT_MODEL)
    assert promote_and_roll_out(message, *world.args()).action == "rejected"  # type: ignore[union-attr]
    calls = len(world.chat.calls)
    again = promote_and_roll_out(message, *world.args())
    assert again is not None
    assert again.action == "skipped"
    assert "rejected" in again.message
    assert len(world.chat.calls) == calls


def test_failed_rollout_marks_the_version_failed_and_keeps_the_active_one(world: World) -> None:
    previous = activate_version(world, "ft:local-base:autonomous-agent:old", 1)
    world.rollout.env[TARGET] = {
        "USE_TUNED_MODEL": "true",
        "TUNED_MODEL_NAME": "ft:local-base:autonomous-agent:old",
    }
    world.rollout.fail_next = "deployment autonomous-agent exceeded its progress deadline"

    outcome = promote(world, mark_active=True)

    assert outcome.action == "rollout_failed"
    assert "previous env restored" in outcome.message
    assert "marked failed" in outcome.message
    failed = world.models.get(AGENT, FT_MODEL)
    assert failed.status == "failed"
    assert "progress deadline" in (failed.error or "")
    active = world.models.active(AGENT)
    assert active is not None
    assert active.id == previous.id
    assert world.rollout.env[TARGET]["TUNED_MODEL_NAME"] == "ft:local-base:autonomous-agent:old"
    # A person can retry it once the cluster is fixed: the deployment is reused, not recreated.
    assert promote(world, mark_active=True).action == "promoted"
    assert len(world.deployer.deployed) == 1


def test_rollout_refused_by_kubernetes_marks_failed_and_raises(world: World) -> None:
    world.rollout.refuse = "Kubernetes refused to patch deployments (403 Forbidden)"
    with pytest.raises(ProviderError, match="403"):
        promote(world, mark_active=True)
    assert world.models.get(AGENT, FT_MODEL).status == "failed"
    assert world.models.active(AGENT) is None


def test_deployment_failure_marks_failed_and_raises(world: World) -> None:
    world.deployer.refuse = "quota exceeded for deployment sku Standard"
    with pytest.raises(ProviderError, match="quota"):
        promote(world, mark_active=True)
    version = world.models.get(AGENT, FT_MODEL)
    assert version.status == "failed"
    assert version.deployment_name is None
    world.deployer.refuse = None
    assert promote(world, mark_active=True).action == "promoted"


def test_dry_run_changes_nothing(world: World) -> None:
    world.chat.wrong_every["local-base"] = 2
    outcome = promote(world, mark_active=True, dry_run=True)
    assert outcome.action == "dry_run"
    assert outcome.decision is not None
    assert outcome.decision.promote
    assert "would promote and roll out" in outcome.message
    assert world.models.list(AGENT) == []
    assert world.rollout.calls == []
    assert world.deployer.deployed == []


def test_an_unreachable_baseline_stops_the_gate(world: World) -> None:
    world.chat.down.add("local-base")
    with pytest.raises(ProviderError, match="could not evaluate local-base"):
        promote(world, mark_active=True)
    assert world.rollout.calls == []


def test_already_active_version_is_not_rolled_out_again(world: World) -> None:
    promote(world, mark_active=True)
    again = promote(world, mark_active=True)
    assert again.action == "already_active"
    assert len(world.rollout.calls) == 1


def test_rollback_goes_back_one_version_then_to_the_base_model(world: World) -> None:
    world.runs.create_or_get(make_run("ft:v2", run_id="run-2"))
    assert promote(world, mark_active=True, force=True).action == "promoted"
    assert promote(world, "ft:v2", mark_active=True, force=True).action == "promoted"
    ports = world.args()

    first = rollback(RollbackRequest(agent_id=AGENT, to=None, by="bob"), *ports)
    assert first.ok
    assert first.to_version is not None
    assert first.to_version.model_name == FT_MODEL
    assert world.rollout.env[TARGET] == {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": FT_MODEL}
    assert world.models.get(AGENT, "ft:v2").status == "rolled_back"
    assert world.models.active(AGENT).model_name == FT_MODEL  # type: ignore[union-attr]

    second = rollback(RollbackRequest(agent_id=AGENT, to=None, by="bob"), *ports)
    assert second.ok
    assert second.to_version is None
    assert world.rollout.env[TARGET] == {"USE_TUNED_MODEL": "false"}
    assert world.models.active(AGENT) is None
    assert "base model" in second.message

    with pytest.raises(InvalidInput, match="nothing to roll back"):
        rollback(RollbackRequest(agent_id=AGENT, to=None, by="bob"), *ports)

    back = rollback(RollbackRequest(agent_id=AGENT, to="v2", by="bob"), *ports)
    assert back.ok
    assert world.models.active(AGENT).model_name == "ft:v2"


def test_rollback_refuses_a_version_that_never_went_live(world: World) -> None:
    world.chat.wrong_every[FT_MODEL] = 2
    promote(world, mark_active=True)  # rejected
    ports = world.args()
    with pytest.raises(InvalidInput, match="never live"):
        rollback(RollbackRequest(agent_id=AGENT, to="v1", by="bob"), *ports)


def test_failed_rollback_rollout_leaves_the_registry_alone(world: World) -> None:
    promote(world, mark_active=True, force=True)
    world.rollout.fail_next = "never became available"
    ports = world.args()
    outcome = rollback(RollbackRequest(agent_id=AGENT, to=None, by="bob"), *ports)
    assert not outcome.ok
    assert "registry unchanged" in outcome.message
    assert world.models.active(AGENT).model_name == FT_MODEL  # type: ignore[union-attr]


def golden_world(world: World, n: int = 40, *, trained: int = 0) -> list[str]:
    """A golden set of ``n`` requests the chat knows the answers to; the first ``trained`` of them are
    also in the candidate's training file. Returns the golden queries."""
    from lightning.domain.golden import GoldenExample, golden_id

    extra: list[QuerySample] = []
    ids: set[str] = set()
    for sample in generate_queries(400, seed=99):
        key = golden_id(AGENT, sample.query)
        if sample.query not in world.chat.truth and key not in ids and len(extra) < n:
            ids.add(key)
            extra.append(sample)
    for sample in extra:
        world.chat.truth[sample.query] = sample
    world.golden.put(
        [
            GoldenExample.of(
                agent_id=AGENT, query=s.query, expected_tool=s.tool, expected_arguments=dict(s.arguments)
            )
            for s in extra
        ]
    )
    lines = [
        json.dumps(
            {"messages": [{"role": "user", "content": s.query}, {"role": "assistant", "content": "x"}]}
        )
        for s in extra[:trained]
    ]
    world.blobs.blobs["train.jsonl"] = ("\n".join(lines) + "\n").encode() if lines else b""
    manifest = world.datasets.get("autonomous-agent-v1")
    files = [
        DatasetFile(split="train", uri="mem://train.jsonl", sha256="x", examples=trained, bytes=1, tokens=1)
    ]
    world.datasets.put(
        manifest.model_copy(update={"files": files, "content_sha256": "with-files"}), overwrite=True
    )
    return [s.query for s in extra]


def test_with_a_golden_set_the_gate_decides_on_ground_truth_over_the_judge(world: World) -> None:
    golden_world(world, 40)
    # The candidate is right on everything; the judge (the rubric, on these episodes' labels) is not asked
    # to agree. The base model is wrong on one answer in three.
    world.chat.wrong_every["local-base"] = 3
    outcome = promote(world, mark_active=True)
    assert outcome.action == "promoted"
    decision = outcome.decision
    assert decision is not None
    assert decision.ground_truth
    assert decision.reason.startswith("better than local-base on ground truth")
    assert decision.candidate is not None
    assert decision.candidate.ground_truth.n == 40
    assert decision.candidate.golden_set == f"{AGENT} golden set (40 examples)"


def test_a_candidate_worse_on_ground_truth_is_refused_however_the_judge_scores_it(world: World) -> None:
    golden_world(world, 40)
    world.chat.wrong_every[FT_MODEL] = 4
    outcome = promote(world, mark_active=True)
    assert outcome.action == "rejected"
    assert outcome.decision is not None
    assert "worse than local-base on ground truth" in outcome.decision.reason


def test_golden_requests_the_candidate_trained_on_are_left_out_and_reported(world: World) -> None:
    queries = golden_world(world, 45, trained=10)
    outcome = promote(world, mark_active=True)
    assert outcome.decision is not None
    candidate = outcome.decision.candidate
    assert candidate is not None
    assert candidate.excluded_overlap == 10
    assert candidate.ground_truth.n == 35
    asked = {query for name, query in world.chat.calls if name == FT_MODEL}
    assert not asked & set(queries[:10])


def test_the_gate_replays_at_most_max_requests_stratified(world: World) -> None:
    golden_world(world, 40)
    world.policy = PromotionPolicy(tolerance=0.02, recent_episodes=20, max_requests=24)
    outcome = promote(world, mark_active=True)
    assert outcome.decision is not None
    candidate = outcome.decision.candidate
    assert candidate is not None
    assert candidate.examples == 24
    assert candidate.details["by_source"]["golden"] >= 12


def test_a_rollout_that_cannot_be_put_back_marks_the_version_diverged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.rollout.fail_next = "never became available"
    world.rollout.restore_fails = True
    with caplog.at_level("ERROR"):
        outcome = promote(world, mark_active=True, force=True)
    assert outcome.action == "diverged"
    version = world.models.get(AGENT, FT_MODEL)
    assert version.status == "diverged"
    assert version.observed_env == {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": FT_MODEL}
    assert world.models.active(AGENT) is None  # never "unchanged and fine": the status says it diverged
    assert "DIVERGED" in outcome.message
    assert "TUNED_MODEL_NAME=" + FT_MODEL in outcome.message
    assert any(getattr(r, "alert", None) == "diverged" for r in caplog.records)


def test_a_rollout_that_loses_sight_of_the_cluster_says_the_env_is_unknown(world: World) -> None:
    world.rollout.fail_next = "API unavailable"
    world.rollout.lose_sight = True
    outcome = promote(world, mark_active=True, force=True)
    assert outcome.action == "diverged"
    assert "unknown" in outcome.message
    assert world.models.get(AGENT, FT_MODEL).observed_env is None


def test_a_rollback_that_diverges_says_so_on_the_active_version(world: World) -> None:
    assert promote(world, mark_active=True, force=True).action == "promoted"
    world.rollout.fail_next = "never became available"
    world.rollout.restore_fails = True
    outcome = rollback(RollbackRequest(agent_id=AGENT, by="bob"), *world.args())
    assert not outcome.ok
    assert "DIVERGED" in outcome.message
    active = world.models.active(AGENT)
    assert active is not None
    assert active.status == "diverged"
    assert active.observed_env == {"USE_TUNED_MODEL": "false", "TUNED_MODEL_NAME": None}

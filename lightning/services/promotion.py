"""Promotion: register a fine-tuned model, deploy it, gate it, activate it, roll it out — and roll back.

Callers:
- the CLI (``promote-model``, ``rollback``) and the HTTP API through ``promote_model`` and ``rollback``;
- both loop hosts (the Functions ``fine-tune-done`` handler and the local ``run-loop``) through
  ``promote_and_roll_out(message, ports, policy)``.

Every use case takes ``(request_or_message, ports: PromotionPorts, policy: PromotionPolicy)``; the
policy comes from settings in one place (``lightning.bootstrap.promotion_policy``).

The steps of a promotion, each recorded on the ``ModelVersion``:

1. register — the version and its lineage (training run → dataset name + sha256 → episode count;
   the episode ids are in the dataset manifest). A model no training run produced has no lineage
   and is refused unless ``force`` (which also skips the gate, and is recorded);
2. deploy — ``ModelDeployer`` (an Azure OpenAI deployment, or nothing for the local server);
3. gate — the candidate and the current active model (the base model when none is active) are
   replayed on the same requests, at most ``max_requests`` of them, stratified by tool: the
   agent's golden set (minus anything the candidate trained on; the overlap is reported) and
   held-out episodes (the dataset's validation split, recent labeled ones), scored by the same
   evaluator (``lightning/services/evaluation.py``). With at least ``min_golden`` golden requests
   the gate decides on ground truth and the judge only breaks ties; without, it says it is
   judge-only (``decide_promotion``). Refused → status ``rejected``, decision stored;
4. roll out — ``AgentRollout`` sets ``USE_TUNED_MODEL=true`` and ``TUNED_MODEL_NAME=<deployment>``
   (and restarts); a rollout that fails is reverted by the adapter and the version is ``failed``;
5. activate — only after the rollout succeeded, so a crash in between is repaired by simply
   delivering the message again (the version is not active yet, so the step runs again).

Order matters for idempotency: a version whose status is ``active`` is never rolled out twice.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import utcnow
from lightning.domain.errors import Conflict, InvalidInput, LightningError, NotFound, TransientProviderError
from lightning.domain.finetune_format import unit_hash
from lightning.domain.messages import FINE_TUNE_DONE, DoneMessage, PromoteModel
from lightning.domain.model import (
    GateRule,
    ModelVersion,
    PromotionDecision,
    PromotionJob,
    PromotionPhase,
    decide_promotion,
)
from lightning.domain.training import TrainingRun
from lightning.ports.bundles import PromotionPorts
from lightning.ports.datasets import DatasetStore
from lightning.ports.deploy import ModelDeployer
from lightning.ports.models import ModelRegistry
from lightning.ports.queue import Queue
from lightning.ports.rollout import RolloutResult
from lightning.ports.runs import RunStore
from lightning.services.evaluation import (
    EvalSet,
    evaluate_models,
    golden_requests,
    held_out_requests,
    stratified_cap,
    training_queries,
    without_overlap,
)

logger = logging.getLogger(__name__)

USE_TUNED_MODEL = "USE_TUNED_MODEL"
TUNED_MODEL_NAME = "TUNED_MODEL_NAME"
LOOP_USER = "lightning-loop"
_RUN_SCAN_LIMIT = 1000  # runs of one agent searched for the one that produced a model


class PromotionPolicy(BaseModel):
    """The knobs of a promotion (from ``Settings``: promotion_tolerance, gate_recent_episodes, ...)."""

    model_config = ConfigDict(frozen=True)

    tolerance: float = Field(default=0.02, ge=0, le=1, description="How much worse the candidate may be.")
    recent_episodes: int = Field(default=200, ge=0, description="Recent labeled episodes added to the gate.")
    min_golden: int = Field(
        default=30, ge=1, description="Golden requests needed for the gate to decide on ground truth."
    )
    max_requests: int = Field(default=300, ge=1, description="Requests replayed per model, at most.")
    time_budget_seconds: float | None = Field(
        default=None, gt=0, description="The gate's replay + judging, in seconds (None: unbounded)."
    )
    min_replayed: float = Field(
        default=0.5, gt=0, le=1, description="Share of the planned requests replayed needed to decide."
    )
    round_size: int = Field(
        default=32, ge=1, description="Requests per replay round (both models, then the judge)."
    )
    max_judge_failure_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of answers the judge may fail to score."
    )
    min_reward: float = Field(
        default=0.7, ge=0, le=1, description="Reward at which an episode vouches for its answer."
    )
    base_model: str = Field(default="local-base", description="What agents use when no version is active.")
    rollout_enabled: bool = True
    namespace: str | None = Field(default=None, description="Overrides the agent definition's namespace.")


class PromotionRequest(BaseModel):
    """``promote-model`` as a value."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    model_name: str = Field(min_length=1)
    mark_active: bool = False
    force: bool = False
    dry_run: bool = False
    promoted_by: str = LOOP_USER


PromotionAction = Literal[
    "promoted",  # gate passed (or forced), rolled out and active
    "deployed",  # gate passed, not marked active (no --mark-active)
    "rejected",  # the gate refused it
    "rollout_failed",  # the rollout failed and was reverted; the version is failed
    "diverged",  # the rollout failed and the cluster could not be (or not confirmed to be) put back
    "already_active",  # nothing to do: this version is the active one
    "skipped",  # the loop saw a version it must not retry (rejected, failed, retired...)
    "dry_run",  # evaluated only; nothing changed
]


class RollbackRequest(BaseModel):
    """``rollback`` as a value."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    to: str | None = Field(default=None, description="vN, model or deployment name; None: the previous one.")
    by: str = Field(default=LOOP_USER, description="Who asked (recorded on the version activated).")


class PromotionOutcome(BaseModel):
    """What a promotion did, for printing and for the loop's logs."""

    action: PromotionAction
    message: str
    version: ModelVersion | None = None
    decision: PromotionDecision | None = None
    rollout: RolloutResult | None = None
    env: dict[str, str | None] = Field(default_factory=dict, description="Agent env set (or that would be).")
    target: str | None = Field(default=None, description="namespace/deployment of the agent.")


class RollbackOutcome(BaseModel):
    ok: bool
    message: str
    from_version: ModelVersion | None = None
    to_version: ModelVersion | None = Field(default=None, description="None: back to the base model.")
    env: dict[str, str | None] = Field(default_factory=dict)
    rollout: RolloutResult | None = None


def tuned_env(version: ModelVersion | None) -> dict[str, str | None]:
    """The agent env for a version; ``None`` means the base model (``TUNED_MODEL_NAME`` removed)."""
    if version is None:
        return {USE_TUNED_MODEL: "false", TUNED_MODEL_NAME: None}
    return {USE_TUNED_MODEL: "true", TUNED_MODEL_NAME: version.served_name}


def default_deployment_name(agent_id: str, version: int) -> str:
    """Azure deployment names allow letters, digits, ``-``, ``_`` and ``.``, up to 64 characters."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", agent_id)[:56].strip("-.") or "agent"
    return f"{base}-v{version}"


def find_run(runs: RunStore, *, agent_id: str, model_name: str) -> TrainingRun | None:
    """The training run that produced ``model_name`` for ``agent_id`` (newest first)."""
    for run in runs.list(agent_id=agent_id, limit=_RUN_SCAN_LIMIT):
        if run.fine_tuned_model == model_name:
            return run
    return None


def _find_version(models: ModelRegistry, agent_id: str, name: str) -> ModelVersion | None:
    try:
        return models.get(agent_id, name)
    except NotFound:
        return None


def _lineage(
    request: PromotionRequest, *, agent_id: str, ports: PromotionPorts, force_option: str
) -> tuple[ModelVersion | None, TrainingRun | None]:
    """The version already registered for ``request.model_name`` and the run that produced it; or
    ``InvalidInput`` when that run did not succeed, or when there is neither without ``force``
    (``force_option`` is how the caller spells it: ``--force`` on the CLI, ``force`` in the HTTP body)."""
    existing = _find_version(ports.models, agent_id, request.model_name)
    run = find_run(
        ports.runs, agent_id=agent_id, model_name=existing.model_name if existing else request.model_name
    )
    if run is None and existing is not None and existing.run_id:
        run = ports.runs.get(existing.run_id)
    if run is not None and run.state != "succeeded":
        raise InvalidInput(
            f"training run {run.id} for {run.fine_tuned_model} is {run.state}, not succeeded: nothing to promote"
        )
    if run is None and existing is None and not request.force:
        raise InvalidInput(
            f"no training run of {agent_id} produced model {request.model_name!r}; check the name with "
            f"get-training-status, or pass {force_option} to register it without lineage (skips the gate, "
            "recorded)",
            field="model_name",
        )
    return existing, run


def _register(
    models: ModelRegistry,
    datasets: DatasetStore,
    agent_id: str,
    model_name: str,
    run: TrainingRun | None,
) -> ModelVersion:
    dataset_sha = run.dataset_sha256 if run else None
    episode_count: int | None = None
    if run is not None:
        manifest = datasets.find(run.dataset_name)
        if manifest is not None:
            episode_count = manifest.episode_count
            dataset_sha = manifest.content_sha256
    # Two promoters may race for the same version number: the registry refuses the loser, who retries.
    for _ in range(5):
        number = models.next_version(agent_id)
        candidate = ModelVersion(
            id=f"{agent_id}:v{number}",
            agent_id=agent_id,
            version=number,
            model_name=model_name,
            run_id=run.id if run else None,
            job_id=run.job_id if run else None,
            dataset_name=run.dataset_name if run else None,
            dataset_sha256=dataset_sha,
            episode_count=episode_count,
        )
        try:
            version, created = models.register(candidate)
        except Conflict:
            continue
        if created:
            logger.info("registered %s (%s)", version.id, model_name, extra={"agent_id": agent_id})
        return version
    raise Conflict(f"could not register {model_name} for {agent_id}: version numbers kept colliding; retry")


def _deploy(models: ModelRegistry, deployer: ModelDeployer, version: ModelVersion) -> ModelVersion:
    if version.deployment_name and version.status not in ("registered",):
        return version
    try:
        name = deployer.deploy(
            model_name=version.model_name,
            deployment_name=default_deployment_name(version.agent_id, version.version),
        )
    except LightningError as exc:
        models.update(
            version.model_copy(
                update={"status": "failed", "error": f"deployment failed: {exc}", "updated_at": utcnow()}
            )
        )
        raise
    return models.update(
        version.model_copy(
            update={"deployment_name": name, "status": "deployed", "error": None, "updated_at": utcnow()}
        )
    )


def gate_requests(
    *, agent_id: str, dataset_name: str | None, ports: PromotionPorts, policy: PromotionPolicy
) -> EvalSet:
    """What the gate replays: golden requests (minus the candidate's training split) and held-out
    episodes, capped at ``policy.max_requests`` and stratified, in a stable shuffled order; with the
    overlap and the golden set."""
    examples = ports.golden.list(agent_id)
    manifest = ports.datasets.find(dataset_name) if dataset_name else None
    gold, overlap = without_overlap(golden_requests(examples), training_queries(manifest, ports.blobs))
    held = held_out_requests(
        agent_id=agent_id,
        episodes=ports.episodes,
        datasets=ports.datasets,
        dataset_name=dataset_name,
        recent=policy.recent_episodes,
        min_reward=policy.min_reward,
    )
    golden_share = min(len(gold), max(policy.max_requests // 2, policy.max_requests - len(held)))
    chosen = stratified_cap(gold, golden_share)
    chosen += stratified_cap(held, policy.max_requests - len(chosen))
    # In a stable shuffled order, so that when the time budget cuts the replay short, what was replayed
    # is still a fair sample of every stratum (not all golden, or all one tool).
    chosen.sort(key=lambda r: unit_hash(f"{r.source}\x00{r.query}"))
    name = f"{agent_id} golden set ({len(examples)} examples)" if examples else None
    return EvalSet(chosen, name, overlap)


Progress = Callable[[PromotionPhase, int, int], None]
"""``progress(phase, replayed, planned)``: where a promotion is (the HTTP job's status)."""


def _gate(
    *,
    agent: AgentDefinition,
    candidate_model: str,
    dataset_name: str | None,
    ports: PromotionPorts,
    policy: PromotionPolicy,
    progress: Progress | None = None,
) -> PromotionDecision:
    eval_set = gate_requests(agent_id=agent.id, dataset_name=dataset_name, ports=ports, policy=policy)
    active = ports.models.active(agent.id)
    baseline_model = active.served_name if active else policy.base_model
    if progress is not None:
        progress("gating", 0, len(eval_set.requests))
    candidate, baseline = evaluate_models(
        models=[candidate_model, baseline_model],
        agent=agent,
        eval_set=eval_set,
        ports=ports.evaluation,
        time_budget=policy.time_budget_seconds,
        round_size=policy.round_size,
        on_progress=(lambda done, planned: progress("gating", done, planned)) if progress else None,
    )
    rule = GateRule(
        tolerance=policy.tolerance,
        min_golden=policy.min_golden,
        min_replayed=policy.min_replayed,
        max_judge_failure_rate=policy.max_judge_failure_rate,
    )
    return decide_promotion(candidate, baseline, rule=rule)


def _target(agent: AgentDefinition, policy: PromotionPolicy) -> tuple[str, str]:
    return policy.namespace or agent.namespace, agent.deployment_name


def promote_model(
    request: PromotionRequest,
    ports: PromotionPorts,
    policy: PromotionPolicy,
    *,
    progress: Progress | None = None,
) -> PromotionOutcome:
    """Register → deploy → gate → (with ``mark_active``) roll out → activate. See the module docstring.

    Raises ``NotFound`` (unknown agent), ``InvalidInput`` (a model no succeeded run produced, without
    ``force``), ``ProviderError`` (deployment or Kubernetes refused; the version is marked failed).
    """
    models = ports.models
    agent = ports.agents.get(request.agent_id)
    namespace, deployment = _target(agent, policy)
    target = f"{namespace}/{deployment}"
    existing, run = _lineage(request, agent_id=agent.id, ports=ports, force_option="--force")
    if existing is not None and existing.active:
        return PromotionOutcome(
            action="already_active",
            message=f"{existing.id} ({existing.served_name}) is already the active version of {agent.id}",
            version=existing,
            decision=existing.decision,
            env=tuned_env(existing),
            target=target,
        )

    if request.dry_run:
        return _dry_run(
            request,
            agent=agent,
            existing=existing,
            run=run,
            target=target,
            ports=ports,
            policy=policy,
            progress=progress,
        )

    version = existing or _register(models, ports.datasets, agent.id, request.model_name, run)
    version = _reported(progress, models, version, "deploying")
    version = _deploy(models, ports.deployer, version)

    if request.force:
        decision = PromotionDecision(
            promote=True, reason=f"forced by {request.promoted_by} (--force): gate skipped", forced=True
        )
    else:
        decision = _gate(
            agent=agent,
            candidate_model=version.served_name,
            dataset_name=version.dataset_name,
            ports=ports,
            policy=policy,
            progress=progress,
        )
        version = _reread(progress, models, version)
    version = models.update(
        version.model_copy(
            update={
                "decision": decision,
                "evaluation": decision.candidate or version.evaluation,
                "status": "deployed" if decision.promote else "rejected",
                "error": None,
                "updated_at": utcnow(),
            }
        )
    )
    env = tuned_env(version)
    if not decision.promote:
        return PromotionOutcome(
            action="rejected",
            message=f"promotion of {version.id} refused: {decision.reason}",
            version=version,
            decision=decision,
            env=env,
            target=target,
        )
    if not request.mark_active:
        return PromotionOutcome(
            action="deployed",
            message=f"{version.id} passed the gate and is deployed as {version.served_name}; "
            "not marked active (pass --mark-active to activate and roll out)",
            version=version,
            decision=decision,
            env=env,
            target=target,
        )
    version = _reported(progress, models, version, "rolling_out")
    return _roll_out_and_activate(
        version,
        decision,
        env=env,
        namespace=namespace,
        deployment=deployment,
        promoted_by=request.promoted_by,
        ports=ports,
        policy=policy,
    )


def _reread(progress: Progress | None, models: ModelRegistry, version: ModelVersion) -> ModelVersion:
    """Progress is written on the version (its job): read it again before writing it ourselves."""
    return models.get(version.agent_id, version.id) if progress is not None else version


def _reported(
    progress: Progress | None, models: ModelRegistry, version: ModelVersion, phase: PromotionPhase
) -> ModelVersion:
    if progress is None:
        return version
    progress(phase, 0, 0)
    return _reread(progress, models, version)


def _roll_out_and_activate(
    version: ModelVersion,
    decision: PromotionDecision,
    *,
    env: dict[str, str | None],
    namespace: str,
    deployment: str,
    promoted_by: str,
    ports: PromotionPorts,
    policy: PromotionPolicy,
) -> PromotionOutcome:
    models, rollout = ports.models, ports.rollout
    target = f"{namespace}/{deployment}"
    result: RolloutResult | None = None
    if policy.rollout_enabled:
        try:
            result = rollout.roll_out(namespace=namespace, deployment=deployment, env=env)
        except LightningError as exc:
            models.update(
                version.model_copy(
                    update={"status": "failed", "error": f"rollout failed: {exc}", "updated_at": utcnow()}
                )
            )
            raise
        if result.diverged:
            diverged = _mark_diverged(models, version, result, target)
            return PromotionOutcome(
                action="diverged",
                message=diverged.error or "",
                version=diverged,
                decision=decision,
                rollout=result,
                env=env,
                target=target,
            )
        if not result.ok:
            failed = models.update(
                version.model_copy(
                    update={
                        "status": "failed",
                        "error": f"rollout failed: {result.message}",
                        "updated_at": utcnow(),
                    }
                )
            )
            return PromotionOutcome(
                action="rollout_failed",
                message=f"rollout of {failed.id} to {target} failed ({result.message}); previous env restored; "
                f"{failed.id} marked failed, the active version is unchanged",
                version=failed,
                decision=decision,
                rollout=result,
                env=env,
                target=target,
            )
    version = models.update(
        version.model_copy(
            update={
                "promoted_at": utcnow(),
                "promoted_by": promoted_by,
                "previous_env": result.previous_env if result else None,
                "updated_at": utcnow(),
            }
        )
    )
    version = models.activate(version.agent_id, version.id)
    rolled = result.message if result else "rollout disabled (ROLLOUT_ENABLED=false)"
    logger.info(
        "promoted %s", version.id, extra={"agent_id": version.agent_id, "model_version": version.served_name}
    )
    return PromotionOutcome(
        action="promoted",
        message=f"{version.id} ({version.served_name}) is now active for {version.agent_id}; {rolled}",
        version=version,
        decision=decision,
        rollout=result,
        env=env,
        target=target,
    )


def _env_text(env: dict[str, str | None] | None) -> str:
    if env is None:
        return "unknown (the API could not be read)"
    return " ".join(f"{k}={v}" if v is not None else f"{k}-" for k, v in env.items())


def _mark_diverged(
    models: ModelRegistry, version: ModelVersion, result: RolloutResult, target: str
) -> ModelVersion:
    """The cluster and the registry disagree: say so on the version, loudly, with what the cluster runs."""
    message = (
        f"DIVERGED: {target} was asked to run {version.id} ({version.served_name}), the rollout failed "
        f"({result.message}) and the previous env could not be confirmed back; the Deployment's env is "
        f"{_env_text(result.observed_env)} while the registry's active version is unchanged. Fix the "
        "Deployment by hand (kubectl set env …) or run promote-model/rollback again"
    )
    logger.error(  # alert-worthy: pods may serve a model the registry does not name
        message,
        extra={"agent_id": version.agent_id, "model_version": version.served_name, "alert": "diverged"},
    )
    return models.update(
        version.model_copy(
            update={
                "status": "diverged",
                "error": message,
                "observed_env": result.observed_env,
                "updated_at": utcnow(),
            }
        )
    )


def _dry_run(
    request: PromotionRequest,
    *,
    agent: AgentDefinition,
    existing: ModelVersion | None,
    run: TrainingRun | None,
    target: str,
    ports: PromotionPorts,
    policy: PromotionPolicy,
    progress: Progress | None = None,
) -> PromotionOutcome:
    candidate_model = existing.served_name if existing else request.model_name
    decision = _gate(
        agent=agent,
        candidate_model=candidate_model,
        dataset_name=(existing.dataset_name if existing else None) or (run.dataset_name if run else None),
        ports=ports,
        policy=policy,
        progress=progress,
    )
    if request.force and not decision.promote:
        decision = decision.model_copy(
            update={"promote": True, "forced": True, "reason": f"forced (--force) over: {decision.reason}"}
        )
    env = tuned_env(existing) if existing else {USE_TUNED_MODEL: "true", TUNED_MODEL_NAME: request.model_name}
    if not decision.promote:
        would = "would refuse the promotion"
    elif request.mark_active:
        would = f"would promote and roll out {env} to {target}"
    else:
        would = "would pass the gate and deploy (not mark active without --mark-active)"
    return PromotionOutcome(
        action="dry_run",
        message=f"dry run, nothing changed: {would}. {decision.reason}",
        version=existing,
        decision=decision,
        env=env,
        target=target,
    )


def promote_and_roll_out(
    message: DoneMessage, ports: PromotionPorts, policy: PromotionPolicy
) -> PromotionOutcome | None:
    """Loop step for the ``fine-tune-done`` queue: promote the run's model hands-off (gate on, mark active),
    or run a promotion job asked for over HTTP (``PromoteModel``: ``run_promotion_job``).

    Returns ``None`` (and logs why) when there is nothing to promote: the run did not succeed or
    produced no model. Idempotent: a second delivery of the same message finds the version
    ``active`` (→ ``already_active``) or ``rejected``/``failed``/``retired``/``rolled_back``
    (→ ``skipped``; a person retries with ``promote-model``), and never rolls out twice.
    Raises ``NotFound`` for an unknown run or agent, ``ProviderError`` when deployment or the
    rollout was refused (the host retries transient ones and dead-letters the rest).
    """
    if isinstance(message, PromoteModel):
        return run_promotion_job(message, ports, policy)
    run = ports.runs.get(message.run_id)
    if run.state != "succeeded" or not run.fine_tuned_model:
        logger.info(
            "run %s ended %s without a model: nothing to promote",
            run.id,
            run.state,
            extra={"agent_id": run.agent_id, "run_id": run.id},
        )
        return None
    existing = _find_version(ports.models, run.agent_id, run.fine_tuned_model)
    if existing is not None and existing.status not in ("registered", "deployed"):
        if existing.active:
            return PromotionOutcome(
                action="already_active",
                message=f"{existing.id} is already active: duplicate completion message ignored",
                version=existing,
                decision=existing.decision,
            )
        return PromotionOutcome(
            action="skipped",
            message=f"{existing.id} is {existing.status}; the loop does not retry it "
            "(run promote-model to try again)",
            version=existing,
            decision=existing.decision,
        )
    return promote_model(
        PromotionRequest(
            agent_id=run.agent_id, model_name=run.fine_tuned_model, mark_active=True, promoted_by=LOOP_USER
        ),
        ports,
        policy,
    )


def _previous_version(
    models: ModelRegistry, agent_id: str, current: ModelVersion | None
) -> ModelVersion | None:
    """The version that was active before ``current``: the most recently promoted retired one."""
    retired = [
        v
        for v in models.list(agent_id)
        if v.status == "retired" and v.promoted_at is not None and (current is None or v.id != current.id)
    ]
    retired.sort(key=lambda v: v.promoted_at or v.created_at, reverse=True)
    return retired[0] if retired else None


def rollback(request: RollbackRequest, ports: PromotionPorts, policy: PromotionPolicy) -> RollbackOutcome:
    """Re-activate the previous version (or ``to``) and roll out its env; with no previous version,
    go back to the base model (``USE_TUNED_MODEL=false``). The version left is marked ``rolled_back``
    so a second rollback goes further back instead of returning to it."""
    agent_id, to, by = request.agent_id, request.to, request.by
    models, rollout = ports.models, ports.rollout
    agent = ports.agents.get(agent_id)
    namespace, deployment = _target(agent, policy)
    current = models.active(agent_id)
    target_version: ModelVersion | None
    if to is not None:
        target_version = models.get(agent_id, to)
        if current is not None and target_version.id == current.id:
            raise InvalidInput(f"{target_version.id} is already the active version of {agent_id}")
        if target_version.status in ("registered", "rejected", "failed") or not (
            target_version.deployment_name or target_version.promoted_at
        ):
            raise InvalidInput(
                f"{target_version.id} is {target_version.status} and was never live; promote it with "
                "promote-model (--force to skip the gate) instead of rolling back to it"
            )
    else:
        if current is None:
            raise InvalidInput(
                f"nothing to roll back: {agent_id} has no active version (it uses the base model)"
            )
        target_version = _previous_version(models, agent_id, current)
    env = tuned_env(target_version)
    result: RolloutResult | None = None
    if policy.rollout_enabled:
        result = rollout.roll_out(namespace=namespace, deployment=deployment, env=env)
        if result.diverged and current is not None:
            # The registry still names ``current`` as active (its flag stays); its status says the cluster
            # may not run it.
            current = _mark_diverged(models, current, result, f"{namespace}/{deployment}")
            return RollbackOutcome(
                ok=False,
                message=f"rollback {current.error}",
                from_version=current,
                to_version=target_version,
                env=env,
                rollout=result,
            )
        if not result.ok:
            return RollbackOutcome(
                ok=False,
                message=f"rollback rollout to {namespace}/{deployment} failed ({result.message}); previous env "
                f"{'restored' if result.rolled_back else 'NOT confirmed'}; registry unchanged",
                from_version=current,
                to_version=target_version,
                env=env,
                rollout=result,
            )
    now = utcnow()
    if target_version is not None:
        target_version = models.update(
            target_version.model_copy(
                update={"promoted_at": now, "promoted_by": by, "error": None, "updated_at": now}
            )
        )
        target_version = models.activate(agent_id, target_version.id)
    if current is not None:
        latest = models.get(agent_id, current.id)
        current = models.update(
            latest.model_copy(update={"active": False, "status": "rolled_back", "updated_at": now})
        )
    to_name = (
        f"{target_version.id} ({target_version.served_name})"
        if target_version
        else f"the base model ({policy.base_model})"
    )
    rolled = result.message if result else "rollout disabled"
    return RollbackOutcome(
        ok=True,
        message=f"{agent_id} rolled back to {to_name}; {rolled}",
        from_version=current,
        to_version=target_version,
        env=env,
        rollout=result,
    )


# --- promotions asked for over HTTP: a job on the queue, its status on the version -------------------
class PromotionTicket(BaseModel):
    """What ``POST …/promote`` answers (202): the job and where to follow it."""

    agent_id: str
    version_id: str
    job: PromotionJob
    created: bool = Field(description="False: a job for this version was already queued or running.")


def _with_job(models: ModelRegistry, version: ModelVersion, **changes: object) -> ModelVersion:
    """Write ``changes`` on the version's job, on the latest copy of the version (retried on a race)."""
    for _ in range(5):
        latest = models.get(version.agent_id, version.id)
        assert latest.promotion is not None
        job = latest.promotion.model_copy(update={**changes, "updated_at": utcnow()})
        try:
            return models.update(latest.model_copy(update={"promotion": job}))
        except Conflict:
            continue
    raise Conflict(f"could not record the promotion job of {version.id}: it kept changing; retry")


def request_promotion(request: PromotionRequest, ports: PromotionPorts, *, queue: Queue) -> PromotionTicket:
    """``POST /api/models/{agent_id}/promote``: check the request, register the version, record a job on
    it and queue it on ``fine-tune-done`` (``PromoteModel``) — seconds, whatever the gate will take.

    The same checks as ``promote_model`` run first, so a bad request is a 4xx now, not a failed job
    later. A version whose job is still queued or running gets that job back (its message is sent
    again under the same id: the queue drops the repeat, and a send lost to a crash is repaired)."""
    agent = ports.agents.get(request.agent_id)
    existing, run = _lineage(request, agent_id=agent.id, ports=ports, force_option="force")
    version = existing or _register(ports.models, ports.datasets, agent.id, request.model_name, run)
    job = version.promotion
    created = job is None or job.finished
    if created:
        job = PromotionJob(
            id=uuid.uuid4().hex[:16],
            mark_active=request.mark_active,
            force=request.force,
            dry_run=request.dry_run,
            requested_by=request.promoted_by,
        )
        for _ in range(5):
            try:
                version = ports.models.update(version.model_copy(update={"promotion": job}))
                break
            except Conflict:
                version = ports.models.get(agent.id, version.id)
        else:
            raise Conflict(f"{version.id} kept changing while its promotion was recorded; retry")
    assert job is not None
    message = PromoteModel(agent_id=agent.id, version_id=version.id, job_id=job.id)
    queue.send(FINE_TUNE_DONE, message.model_dump(mode="json"), message_id=f"promote-{job.id}")
    logger.info(
        "promotion of %s queued as job %s", version.id, job.id, extra={"agent_id": agent.id, "job_id": job.id}
    )
    return PromotionTicket(agent_id=agent.id, version_id=version.id, job=job, created=created)


def run_promotion_job(
    message: PromoteModel, ports: PromotionPorts, policy: PromotionPolicy
) -> PromotionOutcome | None:
    """The queue worker's side of ``request_promotion``: run ``promote_model`` for the job, writing its
    phase and the gate's progress on the version, then its outcome.

    A message whose job is gone (a newer request replaced it) or finished (a repeated delivery) is
    done: ``None``. A ``LightningError`` is recorded on the job — ``failed`` when permanent,
    ``queued`` again with the error when transient — and raised, so the queue settles it by the one
    rule (docs/guarantees.md)."""
    version = ports.models.get(message.agent_id, message.version_id)
    job = version.promotion
    if job is None or job.id != message.job_id or job.finished:
        logger.info(
            "promotion job %s of %s is %s: nothing to do",
            message.job_id,
            message.version_id,
            "replaced" if job is None or job.id != message.job_id else job.state,
            extra={"agent_id": message.agent_id, "job_id": message.job_id},
        )
        return None
    version = _with_job(ports.models, version, state="running", attempts=job.attempts + 1, error=None)

    def progress(phase: PromotionPhase, replayed: int, planned: int) -> None:
        changes: dict[str, object] = {"phase": phase}
        if phase == "gating":
            changes.update(replayed=replayed, planned=planned)
        _with_job(ports.models, version, **changes)

    request = PromotionRequest(
        agent_id=message.agent_id,
        model_name=version.model_name,
        mark_active=job.mark_active,
        force=job.force,
        dry_run=job.dry_run,
        promoted_by=job.requested_by,
    )
    try:
        outcome = promote_model(request, ports, policy, progress=progress)
    except LightningError as exc:
        transient = isinstance(exc, TransientProviderError)
        _with_job(
            ports.models,
            version,
            state="queued" if transient else "failed",
            error=f"{type(exc).__name__}: {exc}" + ("; retrying" if transient else ""),
        )
        raise
    _with_job(
        ports.models, version, state="succeeded", phase="done", action=outcome.action, message=outcome.message
    )
    return outcome


def promotion_status(agent_id: str, version: str, *, models: ModelRegistry) -> dict[str, object]:
    """``GET /api/models/{agent_id}/promotions/{version}``: the job, the version's status and, once
    decided, the gate's decision."""
    found = models.get(agent_id, version)
    if found.promotion is None:
        raise NotFound("promotion of", found.id, hint=f"POST /api/models/{agent_id}/promote to start one")
    decision = found.decision
    return {
        "agent_id": agent_id,
        "version_id": found.id,
        "model_name": found.model_name,
        "status": found.status,
        "active": found.active,
        "job": found.promotion.model_dump(mode="json"),
        "decision": None
        if decision is None
        else {"promote": decision.promote, "reason": decision.reason, "forced": decision.forced},
        "error": found.error,
    }

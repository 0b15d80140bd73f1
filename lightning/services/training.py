"""Training: start, poll, show, list and cancel fine-tuning runs, and the loop step that drives them.

Called by the CLI (``lightning/commands/training.py``), the local loop and the Azure Functions
Service Bus handler. Use cases take ``(request_or_message, ports: TrainingPorts, policy)``; the small
readers take the one or two ports they need:

- ``start_training(request, ports, policy=TrainingPolicy())`` → ``StartResult`` — idempotent: the same
  dataset + settings returns the existing run (resuming it if a crash interrupted it) instead of paying
  for a second job. A run that failed before the provider created a job never blocks: the same request
  starts a new attempt. ``start_failure(result)`` is the error to report when the start ended on a
  failed or cancelled run.
- ``poll_training(run, *, runs, provider)`` → ``(run, terminal)`` — advances the stored run from the
  provider's answer.
- ``training_status(job_id, *, runs, provider)`` → ``TrainingStatus`` (polls first).
- ``cancel_training(job_id, *, runs, provider)`` → ``TrainingRun``.
- ``list_training_runs(*, runs, agent_id=None, limit=50)`` → ``list[TrainingRun]``.
- ``start_or_poll_fine_tune(message, ports, policy, *, clock=None)`` → ``FineTuneStep`` — the
  ``fine-tune-jobs`` queue handler (the policy comes from settings in ``lightning.bootstrap``).

Durability: the run is written after every step (files uploaded, files processed, job created), with
the etag of the previous write, so a crash resumes where it stopped and two concurrent drivers of one
run cannot both go on (the loser gets ``Conflict`` and returns the stored run). The job carries the run's
idempotency key in its metadata, so a crash between job creation and the write that records it is
repaired by ``find_job`` instead of a second job.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.dataset import DatasetFile, DatasetManifest
from lightning.domain.episode import utcnow
from lightning.domain.errors import (
    Conflict,
    InvalidInput,
    LightningError,
    NotFound,
    ProviderError,
    TransientProviderError,
)
from lightning.domain.messages import (
    FINE_TUNE_DONE,
    FINE_TUNE_JOBS,
    FineTuneDone,
    PollFineTune,
    StartFineTune,
)
from lightning.domain.training import (
    MAX_STORED_EVENTS,
    Hyperparameters,
    RunEvent,
    RunMetrics,
    TrainingRun,
    check_suffix,
    derive_suffix,
    idempotency_key,
    progress_percent,
    remaining_seconds,
    run_state_for,
    step_rate,
)
from lightning.faultpoints import fault_point
from lightning.ports.bundles import TrainingPorts
from lightning.ports.clock import Clock
from lightning.ports.datasets import BlobStore
from lightning.ports.finetune import FineTuneProvider, ProviderJob
from lightning.ports.runs import RunStore

logger = logging.getLogger(__name__)


class StartTraining(BaseModel):
    """What ``start-training`` (and a ``StartFineTune`` message) asks for."""

    agent_id: str = Field(min_length=1)
    dataset_name: str = Field(min_length=1)
    base_model: str = Field(min_length=1)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    seed: int | None = None
    suffix: str | None = Field(default=None, description="Model-name suffix; derived from the agent id.")
    use_validation: bool = Field(default=True, description="Use the dataset's validation file if it has one.")
    restart: bool = Field(
        default=False,
        description="Start again when the same run failed or was cancelled after its job was created (a run "
        "that failed before that is retried without it).",
    )


class TrainingPolicy(BaseModel):
    """The knobs of the fine-tune step (from ``Settings``: FINE_TUNE_POLL_SECONDS, BASE_MODEL, ...)."""

    model_config = ConfigDict(frozen=True)

    poll_seconds: float = Field(default=60.0, ge=0, description="Delay before a fine-tune is polled again.")
    default_base_model: str = Field(default="local-base", description="For StartFineTune without one.")
    default_epochs: int | None = Field(default=None, description="TRAINING_EPOCHS; None: provider default.")
    work_dir: Path | None = Field(default=None, description="Where dataset files are downloaded to upload.")
    file_timeout: float = Field(default=600.0, gt=0, description="Seconds to wait for file processing.")


class StartResult(BaseModel):
    run: TrainingRun
    created: bool = Field(description="False: an identical run already existed and was returned.")
    retried: TrainingRun | None = Field(
        default=None,
        description="The identical run that failed before a job was created, which this new attempt replaces.",
    )
    orphan_job: str | None = Field(
        default=None,
        description="A job the provider holds under the returned failed run's key although the run recorded "
        "none (an answer lost in a crash): no new attempt is started for it.",
    )


class TrainingStatus(BaseModel):
    """What ``get-training-status`` shows."""

    job_id: str | None
    run_id: str | None
    agent_id: str | None
    status: str
    base_model: str | None = None
    served_by: str | None = Field(
        default=None, description="The model that trains when base_model is another name for it."
    )
    progress_percent: int
    current_epoch: int | None = None
    total_epochs: int | None = None
    training_loss: float | None = None
    validation_loss: float | None = None
    estimated_seconds_remaining: float | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    duration_seconds: float | None = None
    error: str | None = None
    terminal: bool = False


class FineTuneStep(BaseModel):
    """What one ``fine-tune-jobs`` message did."""

    run: TrainingRun
    terminal: bool
    scheduled_poll: str | None = Field(default=None, description="Message id of the poll scheduled next.")
    done_sent: bool = False


# --- start -------------------------------------------------------------------------------------
def start_training(
    request: StartTraining, ports: TrainingPorts, policy: TrainingPolicy | None = None
) -> StartResult:
    """Create (or find) the run for ``request`` and drive it until the provider has a job.

    A permanent provider error leaves the run ``failed`` with the provider's message and returns it;
    a transient one (retries spent) propagates and leaves the run where it was, so starting again
    resumes it."""
    policy = policy or TrainingPolicy()
    runs, provider = ports.runs, ports.provider
    manifest = ports.datasets.get(request.dataset_name)
    if manifest.agent_id != request.agent_id:
        raise InvalidInput(
            f"dataset {manifest.name!r} belongs to agent {manifest.agent_id!r}, not {request.agent_id!r}",
            field="dataset_name",
        )
    if manifest.format != "jsonl":
        raise InvalidInput(
            f"dataset {manifest.name!r} is in {manifest.format!r} format; supervised fine-tuning needs a "
            "jsonl dataset (build-dataset --output-format jsonl)",
            field="dataset_name",
        )
    if manifest.file("train") is None:
        raise InvalidInput(
            f"dataset {manifest.name!r} has no training file; rebuild it", field="dataset_name"
        )
    suffix = check_suffix(request.suffix) if request.suffix else derive_suffix(request.agent_id)
    use_validation = request.use_validation and manifest.file("validation") is not None
    base_key = idempotency_key(
        agent_id=request.agent_id,
        dataset_sha256=manifest.content_sha256,
        base_model=request.base_model,
        hyperparameters=request.hyperparameters,
        seed=request.seed,
        suffix=suffix,
        use_validation=use_validation,
    )
    attempt = 1
    retried: TrainingRun | None = None
    while True:
        key = base_key if attempt == 1 else f"{base_key}-{attempt}"
        existing = runs.find_by_key(key)
        if existing is None:
            break
        if existing.state in {"failed", "cancelled"} and request.restart:
            attempt += 1
            continue
        if existing.state == "failed" and existing.job_id is None:
            # A crash can hide a job the provider did create (its answer was lost): look before retrying.
            orphan = provider.find_job(existing.idempotency_key) if existing.training_file_id else None
            if orphan is not None:
                return StartResult(run=existing, created=False, orphan_job=orphan.job_id)
            # nothing was paid for and nothing is running: a failed start never blocks the next one
            retried = existing
            attempt += 1
            continue
        if existing.terminal:
            return StartResult(run=existing, created=False)
        return StartResult(run=_drive(existing, manifest, ports, policy), created=False)
    run, created = runs.create_or_get(
        TrainingRun(
            id=new_run_id(),
            agent_id=request.agent_id,
            dataset_name=manifest.name,
            dataset_sha256=manifest.content_sha256,
            base_model=request.base_model,
            hyperparameters=request.hyperparameters,
            seed=request.seed,
            suffix=suffix,
            use_validation=use_validation,
            provider=provider.name,
            idempotency_key=key,
            attempt=attempt,
        )
    )
    logger.info("training run %s %s", run.id, "created" if created else "exists", extra={"run_id": run.id})
    if not run.terminal:
        run = _drive(run, manifest, ports, policy)
    return StartResult(run=run, created=created, retried=retried if created else None)


def start_failure(result: StartResult) -> LightningError | None:
    """The error a start that ended on a failed or cancelled run reports (None when it did not).

    Says why and what to do next: the same command again for a run that failed before its job existed,
    ``--restart`` for one whose job failed or was cancelled."""
    run = result.run
    why = (run.error or "no reason given").rstrip(". ")  # it is followed by "; what to do next"
    if run.state == "failed" and result.orphan_job is not None:
        return ProviderError(
            f"training run {run.id} failed ({why}) yet {run.provider} holds job {result.orphan_job} "
            f"for it: see get-training-status --job-id {result.orphan_job}, or pass --restart to start again",
            provider=run.provider,
        )
    if run.state == "failed" and run.job_id is None:
        return ProviderError(
            f"training run {run.id} failed before a job was created: {why}; "
            "fix that and run the same start-training again (it starts a new attempt)",
            provider=run.provider,
        )
    if run.state == "failed":
        again = "fix that and pass --restart" if result.created else "pass --restart to start again"
        return ProviderError(
            f"training run {run.id} (job {run.job_id}) failed: {why}; {again}", provider=run.provider
        )
    if run.state == "cancelled":
        return Conflict(f"training run {run.id} was cancelled; pass --restart to start again", ident=run.id)
    return None


def new_run_id() -> str:
    """Sortable by creation time, unique without coordination."""
    return f"run-{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


def _drive(
    run: TrainingRun, manifest: DatasetManifest, ports: TrainingPorts, policy: TrainingPolicy
) -> TrainingRun:
    """created/uploading/validating_files → a job exists (queued or later), writing after each step."""
    runs, provider, file_timeout = ports.runs, ports.provider, policy.file_timeout
    try:
        run = _upload(
            run, manifest, runs=runs, blobs=ports.blobs, provider=provider, work_dir=policy.work_dir
        )
        if run.job_id is None:
            run = runs.update(run.progress_to("validating_files"))
            assert run.training_file_id is not None
            provider.wait_for_file(run.training_file_id, timeout=file_timeout)
            if run.validation_file_id:
                provider.wait_for_file(run.validation_file_id, timeout=file_timeout)
            job = provider.find_job(run.idempotency_key)
            if job is None:
                fault_point("training.before_create_job")
                job = provider.create_job(
                    base_model=run.base_model,
                    training_file=run.training_file_id,
                    validation_file=run.validation_file_id,
                    hyperparameters=run.hyperparameters,
                    suffix=run.suffix,
                    seed=run.seed,
                    idempotency_key=run.idempotency_key,
                )
            else:
                logger.info(
                    "run %s: found job %s created earlier", run.id, job.job_id, extra={"run_id": run.id}
                )
            run = runs.update(apply_job(run, job))
        return run
    except Conflict:
        # another driver wrote the run since we read it: theirs is the truth, stop here
        return runs.get(run.id)
    except TransientProviderError:
        raise
    except ProviderError as error:
        logger.warning("run %s failed: %s", run.id, error.message, extra={"run_id": run.id})
        current = runs.get(run.id)
        return runs.update(current.progress_to("failed", error=error.message))


def _upload(
    run: TrainingRun,
    manifest: DatasetManifest,
    *,
    runs: RunStore,
    blobs: BlobStore,
    provider: FineTuneProvider,
    work_dir: Path | None,
) -> TrainingRun:
    train = manifest.file("train")
    validation = manifest.file("validation") if run.use_validation else None
    need_train = run.training_file_id is None
    need_validation = validation is not None and run.validation_file_id is None
    if run.job_id is not None or not (need_train or need_validation):
        return run
    run = runs.update(run.progress_to("uploading"))  # claims the run: a concurrent driver now conflicts
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="lightning-upload-") as tmp:
        if need_train and train is not None:
            file_id = provider.upload_file(_fetch(blobs, train, manifest, Path(tmp)))
            run = runs.update(run.progress_to("uploading", training_file_id=file_id))
        if need_validation and validation is not None:
            file_id = provider.upload_file(_fetch(blobs, validation, manifest, Path(tmp)))
            run = runs.update(run.progress_to("uploading", validation_file_id=file_id))
    return run


def _fetch(blobs: BlobStore, file: DatasetFile, manifest: DatasetManifest, folder: Path) -> Path:
    return blobs.download_file(file.uri, folder / f"{manifest.name}-{file.split}.jsonl")


# --- poll --------------------------------------------------------------------------------------
def apply_job(run: TrainingRun, job: ProviderJob) -> TrainingRun:
    """``run`` advanced by what the provider says about its job (never backwards, terminal is final)."""
    events = _merge_events(run.events, job.events)
    metrics = _merge_metrics(run.metrics, job.metrics, events, trained_tokens=job.trained_tokens)
    changes: dict[str, Any] = {
        "job_id": job.job_id,
        "metrics": metrics,
        "events": events,
        "job_created_at": job.created_at or run.job_created_at,
        "fine_tuned_model": job.fine_tuned_model or run.fine_tuned_model,
        "served_by": job.served_by or run.served_by,
    }
    state = run_state_for(job.status)
    if job.error:
        changes["error"] = job.error
    elif state == "failed" and not run.error:
        changes["error"] = f"{job.job_id} failed without an error message; see its events"
    if state in {"succeeded", "failed", "cancelled"} and job.finished_at is not None:
        changes["finished_at"] = job.finished_at
    return run.progress_to(state, **changes)


def _merge_events(old: list[RunEvent], new: list[RunEvent]) -> list[RunEvent]:
    seen: dict[tuple[datetime, str], RunEvent] = {}
    for event in [*old, *new]:
        seen[(event.created_at, event.message)] = event
    return sorted(seen.values(), key=lambda event: event.created_at)[-MAX_STORED_EVENTS:]


def _merge_metrics(
    old: RunMetrics, new: RunMetrics, events: list[RunEvent], *, trained_tokens: int | None
) -> RunMetrics:
    merged = old.model_copy(
        update={key: value for key, value in new.model_dump(exclude={"extra"}).items() if value is not None}
    )
    merged.extra = {**old.extra, **new.extra}
    if trained_tokens is not None:
        merged.trained_tokens = trained_tokens
    samples = [
        (event.created_at, int(event.data["step"]))
        for event in events
        if isinstance(event.data.get("step"), int | float)
    ]
    rate = step_rate(samples)
    if rate is not None:
        merged.steps_per_second = rate
    return merged


def poll_training(
    run: TrainingRun, *, runs: RunStore, provider: FineTuneProvider
) -> tuple[TrainingRun, bool]:
    """Ask the provider about ``run``'s job, store what changed, and say whether the run is over.

    A run without a job yet is returned unchanged (not terminal): ``start_training`` /
    ``start_or_poll_fine_tune`` resume it. A job the provider no longer knows fails the run."""
    if run.terminal:
        return run, True
    if run.job_id is None:
        return run, False
    try:
        job = provider.get_job(run.job_id)
    except NotFound as error:
        updated = run.progress_to(
            "failed", error=f"{provider.name} no longer knows job {run.job_id}: {error}"
        )
    else:
        updated = apply_job(run, job)
    try:
        stored = runs.update(updated)
    except Conflict:
        # a concurrent poll stored its answer first; it is as fresh as ours
        stored = runs.get(run.id)
    return stored, stored.terminal


# --- status, list, cancel ----------------------------------------------------------------------
def find_run(ident: str, *, runs: RunStore) -> TrainingRun:
    """A run by provider job id (``ftjob-…``) or by our run id (``run-…``)."""
    try:
        return runs.get_by_job_id(ident)
    except NotFound:
        try:
            return runs.get(ident)
        except NotFound:
            raise NotFound("training job", ident, "list known runs with list-training-runs") from None


def training_status(
    job_id: str, *, runs: RunStore, provider: FineTuneProvider, now: datetime | None = None
) -> TrainingStatus:
    """The status view of a run (polled first); a job started outside Lightning is shown read-only."""
    try:
        run = find_run(job_id, runs=runs)
    except NotFound:
        job = provider.get_job(job_id)  # NotFound again when the provider does not know it either
        run = apply_job(
            TrainingRun(
                id=job.job_id,
                agent_id="",
                dataset_name="",
                dataset_sha256="",
                base_model=job.model,
                provider=provider.name,
                idempotency_key=job.job_id,
            ),
            job,
        )
        return status_of(run, now=now, known=False)
    run, _ = poll_training(run, runs=runs, provider=provider)
    return status_of(run, now=now)


def status_of(run: TrainingRun, *, now: datetime | None = None, known: bool = True) -> TrainingStatus:
    metrics = run.metrics
    return TrainingStatus(
        job_id=run.job_id,
        run_id=run.id if known else None,
        agent_id=run.agent_id or None,
        status=run.state,
        base_model=run.base_model or None,
        served_by=run.served_by,
        progress_percent=progress_percent(run),
        current_epoch=metrics.epoch,
        total_epochs=metrics.total_epochs or run.hyperparameters.n_epochs,
        training_loss=metrics.train_loss,
        validation_loss=metrics.valid_loss,
        estimated_seconds_remaining=remaining_seconds(run, now=now),
        fine_tuned_model=run.fine_tuned_model,
        trained_tokens=metrics.trained_tokens,
        duration_seconds=run.duration_seconds,
        error=run.error,
        terminal=run.terminal,
    )


def list_training_runs(*, runs: RunStore, agent_id: str | None = None, limit: int = 50) -> list[TrainingRun]:
    if limit < 1:
        raise InvalidInput("--limit must be at least 1", field="limit")
    return runs.list(agent_id=agent_id, limit=limit)


def cancel_training(job_id: str, *, runs: RunStore, provider: FineTuneProvider) -> TrainingRun:
    """Cancel the provider's job and record it; a run with no job yet is cancelled locally."""
    run = find_run(job_id, runs=runs)
    if run.terminal:
        raise Conflict(f"training run {run.id} already {run.state}; nothing to cancel", ident=run.id)
    target = run.job_id
    if target is None:
        # a crash may have created the job without recording it: cancel that one too
        found = provider.find_job(run.idempotency_key) if run.training_file_id else None
        target = found.job_id if found is not None else None
    if target is None:
        return runs.update(run.progress_to("cancelled", error="cancelled before a job was created"))
    job = provider.cancel_job(target)
    for _ in range(3):
        updated = apply_job(run, job)
        if updated.state != "cancelled" and run_state_for(job.status) != "succeeded":
            updated = updated.progress_to("cancelled")
        try:
            return runs.update(updated)
        except Conflict:
            run = runs.get(run.id)
            if run.terminal:
                return run
    raise Conflict(f"training run {run.id} keeps changing; try cancel-training again", ident=run.id)


# --- the loop step -----------------------------------------------------------------------------
def parse_fine_tune_message(
    body: Mapping[str, Any] | StartFineTune | PollFineTune,
) -> StartFineTune | PollFineTune:
    """A ``fine-tune-jobs`` body; ``InvalidInput`` (→ dead-letter) for anything else."""
    if isinstance(body, StartFineTune | PollFineTune):
        return body
    kind = body.get("kind")
    try:
        if kind == "start":
            return StartFineTune.model_validate(body)
        if kind == "poll":
            return PollFineTune.model_validate(body)
    except ValueError as error:
        raise InvalidInput(f"bad {FINE_TUNE_JOBS} message: {error}") from None
    raise InvalidInput(f"bad {FINE_TUNE_JOBS} message: kind must be 'start' or 'poll', got {kind!r}")


def poll_message_id(run_id: str, attempt: int) -> str:
    """One id per (run, attempt): a redelivered message re-sends the same follow-up, which de-duplicates."""
    return f"poll-{run_id}-{attempt}"


def start_or_poll_fine_tune(
    message: Mapping[str, Any] | StartFineTune | PollFineTune,
    ports: TrainingPorts,
    policy: TrainingPolicy,
    *,
    clock: Clock | None = None,
) -> FineTuneStep:
    """Handle one ``fine-tune-jobs`` message.

    - ``StartFineTune``: start the run (idempotent; base model and epochs default to
      ``policy.default_base_model`` / ``policy.default_epochs``), then schedule ``PollFineTune(attempt=1)``
      ``policy.poll_seconds`` later on ``fine-tune-jobs``.
    - ``PollFineTune``: resume a run that has no job yet, else poll it; not terminal → schedule attempt
      + 1; terminal → send ``FineTuneDone`` to ``fine-tune-done`` with ``message_id = run.id``.

    Duplicate deliveries are harmless: follow-ups carry deterministic message ids (de-duplicated by the
    queue) and a poll of a terminal run only re-sends the same ``FineTuneDone``. Raises ``InvalidInput``
    or ``NotFound`` for messages that can never succeed (dead-letter them) and ``TransientProviderError``
    when a start could not reach the provider (abandon: redelivery resumes it). A transient error while
    polling re-schedules the poll instead."""
    parsed = parse_fine_tune_message(message)
    now = clock.now() if clock is not None else utcnow()
    runs, queue, poll_seconds = ports.runs, ports.queue, policy.poll_seconds

    def schedule(run: TrainingRun, attempt: int, delay: float) -> FineTuneStep:
        message_id = poll_message_id(run.id, attempt)
        queue.send(
            FINE_TUNE_JOBS,
            PollFineTune(run_id=run.id, attempt=attempt).model_dump(mode="json"),
            message_id=message_id,
            scheduled_at=now + timedelta(seconds=delay),
        )
        return FineTuneStep(run=run, terminal=False, scheduled_poll=message_id)

    def done(run: TrainingRun) -> FineTuneStep:
        body = FineTuneDone(
            run_id=run.id, agent_id=run.agent_id, state=run.state, fine_tuned_model=run.fine_tuned_model
        )
        queue.send(FINE_TUNE_DONE, body.model_dump(mode="json"), message_id=run.id)
        return FineTuneStep(run=run, terminal=True, done_sent=True)

    if isinstance(parsed, StartFineTune):
        hyperparameters = parsed.hyperparameters
        if hyperparameters.n_epochs is None and policy.default_epochs is not None:
            hyperparameters = hyperparameters.model_copy(update={"n_epochs": policy.default_epochs})
        request = StartTraining(
            agent_id=parsed.agent_id,
            dataset_name=parsed.dataset_name,
            base_model=parsed.base_model or policy.default_base_model,
            hyperparameters=hyperparameters,
        )
        result = start_training(request, ports, policy)
        return done(result.run) if result.run.terminal else schedule(result.run, 1, poll_seconds)

    run = runs.get(parsed.run_id)
    if run.terminal:
        return done(run)
    try:
        if run.job_id is None:
            run = _drive(run, ports.datasets.get(run.dataset_name), ports, policy)
            terminal = run.terminal
        else:
            run, terminal = poll_training(run, runs=runs, provider=ports.provider)
    except TransientProviderError as error:
        delay = max(poll_seconds, error.retry_after or 0.0)
        logger.warning(
            "run %s: provider busy (%s); polling again in %.0fs",
            run.id,
            error.message,
            delay,
            extra={"run_id": run.id},
        )
        return schedule(run, parsed.attempt + 1, delay)
    if terminal:
        return done(run)
    return schedule(run, parsed.attempt + 1, poll_seconds)

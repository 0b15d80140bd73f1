"""OpenAIFineTuneProvider: the ``FineTuneProvider`` port over the OpenAI fine-tuning API.

One code path for Azure OpenAI (``AzureOpenAI`` + Entra ID token), OpenAI, and the project's local model
server — the client comes from ``make_openai_client(endpoint)``. Built by ``Container.fine_tuning``
(``connect``) and called by ``lightning.services.training``.

What it adds over the SDK: SDK exceptions become the domain error tree (transient = 429/408/409/5xx,
timeouts, connection errors; permanent = other 4xx with the provider's message), transient ones are
retried with backoff + jitter honoring ``Retry-After`` (``RetryPolicy``; the SDK's own retries are off),
and the job's events/checkpoints/result file are normalised into one ``ProviderJob``.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import openai
from openai import OpenAI

from lightning.adapters.openai.client import OpenAIEndpoint, make_openai_client
from lightning.adapters.openai.errors import translate_error
from lightning.adapters.retry import RetryPolicy
from lightning.domain.errors import NotFound, ProviderError, TransientProviderError
from lightning.domain.training import Hyperparameters, RunEvent, RunMetrics, epoch_of
from lightning.ports.finetune import IDEMPOTENCY_METADATA_KEY, ProviderJob

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FILE_DONE = {"processed"}
_FILE_FAILED = {"error", "deleted", "deleting", "failed"}
_STEP_MESSAGE = re.compile(r"step\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_MAX_JOBS_SCANNED = 1000


class OpenAIFineTuneProvider:
    """Files + fine-tuning jobs through one ``openai.OpenAI`` (or ``AzureOpenAI``) client."""

    def __init__(
        self,
        client: OpenAI,
        *,
        name: str = "openai",
        retry: RetryPolicy | None = None,
        file_poll_interval: float = 1.0,
        event_limit: int = 50,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.name = name
        self.retry = retry or RetryPolicy()
        self.file_poll_interval = file_poll_interval
        self.event_limit = event_limit
        self._monotonic = monotonic

    @classmethod
    def connect(
        cls,
        endpoint: OpenAIEndpoint,
        *,
        credential: Any = None,
        retry: RetryPolicy | None = None,
        file_poll_interval: float = 1.0,
    ) -> OpenAIFineTuneProvider:
        client = make_openai_client(endpoint, credential=credential, max_retries=0)
        return cls(client, name=endpoint.provider, retry=retry, file_poll_interval=file_poll_interval)

    # --- error translation + retries --------------------------------------------------------
    def _translate(self, error: openai.OpenAIError, what: str) -> Exception:
        return translate_error(error, what=what, provider=self.name, base_url=self.client.base_url)

    def _once(self, fn: Callable[[], T], what: str) -> T:
        try:
            return fn()
        except openai.OpenAIError as error:
            raise self._translate(error, what) from error

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return self.retry.call(lambda: self._once(fn, what), what=what)

    # --- files ------------------------------------------------------------------------------
    def upload_file(self, path: Path) -> str:
        # bytes, not an open handle: each retry must send the whole file again
        data = path.read_bytes()
        uploaded = self._call(
            lambda: self.client.files.create(file=(path.name, data), purpose="fine-tune"),
            f"upload of {path.name}",
        )
        return str(uploaded.id)

    def wait_for_file(self, file_id: str, *, timeout: float = 600.0) -> None:
        deadline = self._monotonic() + timeout
        while True:
            info = self._call(lambda: self.client.files.retrieve(file_id), f"status of file {file_id}")
            status = (getattr(info, "status", None) or "processed").lower()
            if status in _FILE_DONE:
                return
            if status in _FILE_FAILED:
                details = getattr(info, "status_details", None) or "no details given"
                raise ProviderError(
                    f"{self.name} rejected file {file_id} ({status}): {details}; fix the dataset and rebuild it",
                    provider=self.name,
                )
            if self._monotonic() >= deadline:
                raise TransientProviderError(
                    f"file {file_id} still {status} after {timeout:.0f}s; try again later",
                    provider=self.name,
                )
            self.retry.sleep(self.file_poll_interval)

    # --- jobs -------------------------------------------------------------------------------
    def create_job(
        self,
        *,
        base_model: str,
        training_file: str,
        validation_file: str | None,
        hyperparameters: Hyperparameters,
        suffix: str | None,
        seed: int | None,
        idempotency_key: str,
    ) -> ProviderJob:
        params: dict[str, Any] = {
            "model": base_model,
            "training_file": training_file,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": hyperparameters.model_dump(exclude_none=True)},
            },
            "metadata": {IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        if validation_file:
            params["validation_file"] = validation_file
        if suffix:
            params["suffix"] = suffix
        if seed is not None:
            params["seed"] = seed
        what = f"create fine-tuning job on {base_model}"

        def already_created(error: TransientProviderError) -> ProviderJob | None:
            # A timeout or 5xx may hide a job the provider did create: look before paying twice.
            del error
            try:
                return self.find_job(idempotency_key)
            except TransientProviderError:
                return None

        def create() -> Any:
            return self.retry.call(
                lambda: self._once(lambda: self.client.fine_tuning.jobs.create(**params), what),
                what=what,
                on_retry=already_created,
            )

        try:
            job = create()
        except ProviderError as error:
            # API versions without job metadata (older Azure OpenAI ones) refuse the field: create the
            # job without it. Crash recovery then rests on the run's own record of the job id.
            if error.status_code != 400 or "metadata" not in error.message.lower():
                raise
            logger.warning("%s does not accept job metadata; creating %s without it", self.name, what)
            params.pop("metadata")
            job = create()
        return job if isinstance(job, ProviderJob) else self._normalise(job)

    def find_job(self, idempotency_key: str) -> ProviderJob | None:
        what = "list fine-tuning jobs"
        try:
            page = self._call(
                lambda: self.client.fine_tuning.jobs.list(
                    limit=100, metadata={IDEMPOTENCY_METADATA_KEY: idempotency_key}
                ),
                what,
            )
        except ProviderError as error:
            if isinstance(error, TransientProviderError) or error.status_code not in {400, 422}:
                raise
            # a provider that does not know the metadata filter: list everything, match below
            page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=100), what)
        scanned = 0
        while True:
            for job in page.data:
                scanned += 1
                if (job.metadata or {}).get(IDEMPOTENCY_METADATA_KEY) == idempotency_key:
                    return self._normalise(job)
            if scanned >= _MAX_JOBS_SCANNED or not page.has_next_page():
                return None
            current = page
            page = self._call(current.get_next_page, what)

    def get_job(self, job_id: str) -> ProviderJob:
        try:
            job = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id), f"status of job {job_id}")
        except ProviderError as error:
            if error.status_code == 404:
                raise NotFound("fine-tuning job", job_id, f"{self.name} does not know it") from error
            raise
        events = self._events(job_id)
        checkpoints = self._optional(
            lambda: list(self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=10).data),
            f"checkpoints of job {job_id}",
        )
        result_rows: list[dict[str, str]] = []
        if job.status == "succeeded" and job.result_files:
            result_rows = self._result_rows(job.result_files[0]) or []
        return self._normalise(job, events=events, checkpoints=checkpoints or [], result_rows=result_rows)

    def cancel_job(self, job_id: str) -> ProviderJob:
        try:
            job = self._call(lambda: self.client.fine_tuning.jobs.cancel(job_id), f"cancel job {job_id}")
        except ProviderError as error:
            if error.status_code == 404:
                raise NotFound("fine-tuning job", job_id, f"{self.name} does not know it") from error
            raise
        return self._normalise(job)

    # --- reading events, checkpoints, the result file ----------------------------------------
    def _events(self, job_id: str) -> list[RunEvent]:
        page = self._optional(
            lambda: self.client.fine_tuning.jobs.list_events(job_id, limit=self.event_limit),
            f"events of job {job_id}",
        )
        if page is None:
            return []
        events = [
            RunEvent(
                created_at=_timestamp(event.created_at) or datetime.now(UTC),
                level=event.level or "info",
                message=event.message or "",
                type=event.type or "message",
                data=event.data if isinstance(event.data, dict) else {},
            )
            for event in page.data
        ]
        # the API lists newest first; we keep newest last (stable for equal timestamps)
        events.reverse()
        events.sort(key=lambda event: event.created_at)
        return events

    def _result_rows(self, file_id: str) -> list[dict[str, str]] | None:
        content = self._optional(lambda: self.client.files.content(file_id).read(), f"result file {file_id}")
        if not content:
            return None
        text = _decode_result_file(content)
        if text is None:
            return None
        return [row for row in csv.DictReader(io.StringIO(text)) if row]

    def _optional(self, fn: Callable[[], T], what: str) -> T | None:
        """Extra detail (events, checkpoints, results): a provider without it must not fail the poll."""
        try:
            return self._call(fn, what)
        except ProviderError as error:
            if isinstance(error, TransientProviderError):
                raise
            logger.info("%s unavailable: %s", what, error)
            return None

    def _normalise(
        self,
        job: Any,
        *,
        events: list[RunEvent] | None = None,
        checkpoints: Iterable[Any] = (),
        result_rows: list[dict[str, str]] | None = None,
    ) -> ProviderJob:
        hyperparameters = _hyperparameters(job)
        metrics = _metrics(
            events or [], list(checkpoints), result_rows or [], hyperparameters.get("n_epochs")
        )
        metrics.trained_tokens = getattr(job, "trained_tokens", None)
        metrics.estimated_finish = _timestamp(getattr(job, "estimated_finish", None))
        error = getattr(job, "error", None)
        error_message = None
        if error is not None:
            error_message = getattr(error, "message", None) or None
            code = getattr(error, "code", None)
            if error_message and code:
                error_message = f"{error_message} ({code})"
        # the local model server's extra field (the SDK keeps it): who trains an alias such as gpt-4o-mini
        served_by = (getattr(job, "model_extra", None) or {}).get("served_by")
        return ProviderJob(
            job_id=job.id,
            status=str(job.status),
            model=str(job.model),
            fine_tuned_model=job.fine_tuned_model,
            served_by=str(served_by) if served_by and served_by != job.model else None,
            trained_tokens=getattr(job, "trained_tokens", None),
            error=error_message,
            created_at=_timestamp(getattr(job, "created_at", None)),
            finished_at=_timestamp(getattr(job, "finished_at", None)),
            estimated_finish=_timestamp(getattr(job, "estimated_finish", None)),
            result_files=list(getattr(job, "result_files", None) or []),
            hyperparameters=hyperparameters,
            metadata=dict(getattr(job, "metadata", None) or {}),
            events=events or [],
            metrics=metrics,
        )


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _hyperparameters(job: Any) -> dict[str, Any]:
    """The job's resolved hyperparameters: ``method.supervised`` first, the legacy field otherwise."""
    found: dict[str, Any] = {}
    legacy = getattr(job, "hyperparameters", None)
    if legacy is not None:
        found.update({k: v for k, v in legacy.model_dump().items() if v is not None})
    method = getattr(job, "method", None)
    supervised = getattr(method, "supervised", None) if method is not None else None
    chosen = getattr(supervised, "hyperparameters", None) if supervised is not None else None
    if chosen is not None:
        found.update({k: v for k, v in chosen.model_dump().items() if v is not None})
    return found


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _metrics(
    events: list[RunEvent],
    checkpoints: list[Any],
    result_rows: list[dict[str, str]],
    n_epochs: Any,
) -> RunMetrics:
    """Latest progress and losses: metric events, then newer checkpoints, then the final result file."""
    metrics = RunMetrics()
    total_epochs = (
        int(n_epochs) if isinstance(n_epochs, int | float) and not isinstance(n_epochs, bool) else None
    )
    for event in events:  # oldest → newest, so the last one wins
        data = event.data
        step = _number(data.get("step"))
        total = _number(data.get("total_steps"))
        if step is None:
            match = _STEP_MESSAGE.search(event.message)
            if match:
                step, total = float(match.group(1)), float(match.group(2))
        if step is None:
            continue
        metrics.step = int(step)
        metrics.total_steps = int(total) if total else metrics.total_steps
        metrics.train_loss = _number(data.get("train_loss")) or metrics.train_loss
        valid = _number(data.get("full_valid_loss")) or _number(data.get("valid_loss"))
        metrics.valid_loss = valid if valid is not None else metrics.valid_loss
        epoch = _number(data.get("epoch"))
        if epoch is not None:
            metrics.epoch = int(epoch)
        n_epochs_seen = _number(data.get("n_epochs"))
        if n_epochs_seen and total_epochs is None:
            metrics.total_epochs = int(n_epochs_seen)
        for key in ("train_mean_token_accuracy", "valid_mean_token_accuracy"):
            if _number(data.get(key)) is not None:
                metrics.extra[key] = _number(data.get(key))
    for checkpoint in sorted(checkpoints, key=lambda c: getattr(c, "step_number", 0) or 0):
        step = getattr(checkpoint, "step_number", None)
        if step is None or (metrics.step is not None and step < metrics.step):
            continue
        values = checkpoint.metrics
        metrics.step = int(step)
        metrics.train_loss = _number(getattr(values, "train_loss", None)) or metrics.train_loss
        valid = _number(getattr(values, "full_valid_loss", None)) or _number(
            getattr(values, "valid_loss", None)
        )
        metrics.valid_loss = valid if valid is not None else metrics.valid_loss
    if result_rows:
        last = result_rows[-1]
        if _number(last.get("step")) is not None:
            metrics.step = int(_number(last.get("step")) or 0)
            metrics.total_steps = max(metrics.total_steps or 0, metrics.step)
        # the last rows may carry only some columns (a final validation row): take each column's last value
        train = next(
            (v for row in reversed(result_rows) if (v := _number(row.get("train_loss"))) is not None), None
        )
        metrics.train_loss = train if train is not None else metrics.train_loss
        valid = next(
            (
                v
                for row in reversed(result_rows)
                if (v := _number(row.get("full_valid_loss")) or _number(row.get("valid_loss"))) is not None
            ),
            None,
        )
        metrics.valid_loss = valid if valid is not None else metrics.valid_loss
    if total_epochs:
        metrics.total_epochs = total_epochs
        if metrics.epoch is None and metrics.step is not None and metrics.total_steps:
            metrics.epoch = epoch_of(metrics.step, metrics.total_steps, total_epochs)
    return metrics


def _decode_result_file(content: bytes) -> str | None:
    """Result files are CSV — OpenAI serves them base64-encoded, other servers as plain text."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "," in text.splitlines()[0] if text else False:
        return text
    try:
        decoded = base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if decoded and "," in decoded.splitlines()[0] else None

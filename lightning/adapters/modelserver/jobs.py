"""The background job runner: takes fine-tuning jobs through their states, one at a time.

``validating_files`` → ``queued`` → ``running`` → ``succeeded`` | ``failed`` |
``cancelled``, writing the service's events on the way ("Validating training
file", "Step n/N: training loss=…", "Checkpoint created at step n", "New
fine-tuned model created", "The job has successfully completed"), one
checkpoint per epoch (the last three are kept, as upstream), a result file
(``step_metrics.csv``: step,train_loss,train_accuracy,valid_loss,
valid_mean_token_accuracy) and an ``evaluation.json`` result file.

Base-vs-tuned evaluation on the validation split is reported in three places:
the job's ``evaluation`` field (an extra field next to the API's; the SDK keeps
it: ``job.evaluation`` / ``job.model_extra["evaluation"]``), the data of the
"metrics" event "Evaluation on the validation split: …", and the second
result file ``evaluation.json``.

A job on one of ``local-base``'s aliases (``gpt-4o-mini``, …) keeps the name it
was asked for (``model``, and ``ft:gpt-4o-mini:<suffix>:<id>`` for the result)
and says who serves it: the job's ``served_by`` field and its second event
("gpt-4o-mini is served by local-base on this machine").

Files are checked for what the API refuses before the trainer reads them: a tool
call's ``function.arguments`` must be a JSON *string*, not an object.

Jobs left unfinished by a stopped server are resumed (from scratch) when the
runner starts again. The app creates jobs (``create_job_record``) and calls
``submit`` / ``cancel``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from lightning.adapters.modelserver.catalog import ModelCatalog, alias_notice
from lightning.adapters.modelserver.store import Store, new_id
from lightning.adapters.modelserver.trainer import (
    MIN_TRAINING_EXAMPLES,
    EpochReport,
    Example,
    TrainConfig,
    TrainingCancelled,
    TrainingFileError,
    parse_training_file,
    resolve_hyperparameters,
    train,
)
from lightning.adapters.modelserver.zeroshot import BASE_MODEL

logger = logging.getLogger(__name__)

TERMINAL = {"succeeded", "failed", "cancelled"}
ORGANIZATION = "org-lightning-local"


def sanitize_suffix(suffix: str | None) -> str:
    """The suffix as it appears in a model name: lower case, [a-z0-9._-], runs of others become '-'."""
    if not suffix:
        return ""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", suffix.strip().lower())
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


# "arguments" followed by anything but a string: only files (and lines) with one are parsed here.
_NON_STRING_ARGUMENTS = re.compile(rb'"arguments"\s*:\s*[^"\s]')


def check_argument_strings(data: bytes) -> None:
    """``TrainingFileError`` for a tool call whose ``function.arguments`` is not a JSON string.

    The fine-tuning format (OpenAI fine-tuning guide, "function calling" examples; the API's own
    tool-call params in openai-python) carries arguments as a JSON-encoded string, and the service
    fails the job's file validation otherwise; ``parse_training_file`` would take an object. Line
    numbers are the ones ``parse_training_file`` reports. A file without any such key costs one scan.
    """
    if not _NON_STRING_ARGUMENTS.search(data):
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return  # parse_training_file reports it
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if not _NON_STRING_ARGUMENTS.search(raw.encode()):
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            return  # parse_training_file reports it, with its line
        messages = record.get("messages") if isinstance(record, dict) else None
        for index, message in enumerate(messages if isinstance(messages, list) else []):
            for where, function in _functions_of(message):
                arguments = function.get("arguments")
                if arguments is not None and not isinstance(arguments, str):
                    raise TrainingFileError(
                        f"Invalid file format. Line {line_no}: message {index}: {where}.arguments must be a "
                        f"JSON-encoded string, not {_json_type(arguments)} (write it as "
                        f"{json.dumps(json.dumps(arguments))[:80]})"
                    )


def _functions_of(message: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(message, dict):
        return []
    found = [
        (f"tool_calls[{j}].function", call["function"])
        for j, call in enumerate(message.get("tool_calls") or [])
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    if isinstance(message.get("function_call"), dict):
        found.append(("function_call", message["function_call"]))
    return found


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "a non-string value")


def event(
    message: str, *, level: str = "info", kind: str = "message", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": new_id("ftevent-"),
        "object": "fine_tuning.job.event",
        "created_at": int(time.time()),
        "level": level,
        "message": message,
        "data": data or {},
        "type": kind,
    }


def create_job_record(
    *,
    model: str,
    training_file: str,
    validation_file: str | None,
    hyperparameters: dict[str, Any],
    method_type: str,
    suffix: str | None,
    seed: int,
    metadata: dict[str, str] | None,
) -> dict[str, Any]:
    """A new job in ``validating_files``, shaped like the API's ``fine_tuning.job``."""
    job_id = new_id("ftjob-")
    short = new_id("", 8)
    # The name asked for, alias or not: the workshop's later steps read ft:gpt-4o-mini:<suffix>:<id>.
    model_name = f"ft:{model}:{sanitize_suffix(suffix)}:{short}"
    requested = {
        key: hyperparameters.get(key, "auto")
        for key in ("batch_size", "learning_rate_multiplier", "n_epochs")
    }
    events = [event(f"Created fine-tuning job: {job_id}")]
    notice = alias_notice(model)
    if notice is not None:
        events.append(event(f"{notice}; the fine-tuned model will be named {model_name}"))
    return {
        "id": job_id,
        "object": "fine_tuning.job",
        "created_at": int(time.time()),
        "error": None,
        "fine_tuned_model": None,
        "finished_at": None,
        "hyperparameters": dict(requested),
        "model": model,
        "organization_id": ORGANIZATION,
        "result_files": [],
        "seed": seed,
        "status": "validating_files",
        "trained_tokens": None,
        "training_file": training_file,
        "validation_file": validation_file,
        "estimated_finish": None,
        "integrations": [],
        "metadata": metadata,
        "method": {"type": method_type, method_type: {"hyperparameters": dict(requested)}},
        "user_provided_suffix": suffix,
        "evaluation": None,
        # extra field next to the API's (the SDK keeps it: job.served_by): the model that trains here
        "served_by": BASE_MODEL,
        # internal (never served): the events, checkpoints and the name the model will get
        "_events": events,
        "_checkpoints": [],
        "_model_name": model_name,
    }


@dataclass
class _Validated:
    """A job whose files passed validation, waiting for the trainer."""

    job_id: str
    training: list[Example]
    validation: list[Example]
    config: TrainConfig


class JobRunner:
    """Two worker threads: one validates files, one trains; jobs train one at a time, in order.

    A job whose files are valid waits in ``queued`` while another trains, as on the service.
    """

    def __init__(self, store: Store, catalog: ModelCatalog) -> None:
        self.store = store
        self.catalog = catalog
        self._to_validate: queue.Queue[str | None] = queue.Queue()
        self._to_train: queue.Queue[_Validated | None] = queue.Queue()
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return

        def resume(job: dict[str, Any]) -> None:
            job["status"] = "validating_files"
            job["_events"].append(event("Job resumed after a server restart"))

        for record in reversed(self.store.list_jobs()):  # oldest first
            if record["status"] not in TERMINAL:
                self.store.update_job(record["id"], resume)
                self._to_validate.put(record["id"])
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._validate_loop, name="model-server-validate", daemon=True),
            threading.Thread(target=self._train_loop, name="model-server-train", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; an interrupted job stays unfinished and resumes on restart."""
        self._stopping.set()
        self._to_validate.put(None)
        self._to_train.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def submit(self, job_id: str) -> None:
        self._to_validate.put(job_id)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a job that has not finished; None when it already has (the caller answers 400)."""
        with self._lock:
            current = self.store.get_job(job_id)
            if current is None or current["status"] in TERMINAL:
                return None
            self._cancelled.add(job_id)

            def change(job: dict[str, Any]) -> None:
                job["status"] = "cancelled"
                job["finished_at"] = int(time.time())
                job["estimated_finish"] = None
                job["_events"].append(event("Fine-tuning job cancelled"))

            return self.store.update_job(job_id, change)

    # --- the workers -------------------------------------------------------------------------------

    def _validate_loop(self) -> None:
        while (job_id := self._to_validate.get()) is not None and not self._stopping.is_set():
            self._guarded(job_id, self._validate)

    def _train_loop(self) -> None:
        while (item := self._to_train.get()) is not None and not self._stopping.is_set():
            self._guarded(item.job_id, partial(self._train, item))

    def _guarded(self, job_id: str, work: Callable[[str], None]) -> None:
        try:
            work(job_id)
        except Exception:
            logger.exception("fine-tuning job %s crashed", job_id)
            self._finish_failed(job_id, "server_error", "The job failed because of a server error.", None)

    def _is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    def _update(self, job_id: str, change: Any) -> dict[str, Any] | None:
        """Apply ``change`` unless the job was cancelled meanwhile (a cancel always wins)."""
        with self._lock:
            if self._is_cancelled(job_id):
                return None
            return self.store.update_job(job_id, change)

    def _finish_failed(self, job_id: str, code: str, message: str, param: str | None) -> None:
        def change(job: dict[str, Any]) -> None:
            job["status"] = "failed"
            job["error"] = {"code": code, "message": message, "param": param}
            job["finished_at"] = int(time.time())
            job["estimated_finish"] = None
            job["_events"].append(event(message, level="error"))

        self._update(job_id, change)

    def _validate(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is None or job["status"] in TERMINAL:
            return
        self._update(
            job_id, lambda j: j["_events"].append(event(f"Validating training file: {j['training_file']}"))
        )
        try:
            training = self._examples(job["training_file"], "Training", MIN_TRAINING_EXAMPLES)
        except TrainingFileError as exc:
            self._finish_failed(job_id, "invalid_training_file", str(exc), "training_file")
            return
        validation: list[Example] = []
        if job["validation_file"]:
            try:
                validation = self._examples(job["validation_file"], "Validation", 1)
            except TrainingFileError as exc:
                self._finish_failed(job_id, "invalid_validation_file", str(exc), "validation_file")
                return
        config = resolve_hyperparameters(job["hyperparameters"], len(training), job["seed"])
        resolved = {
            "batch_size": config.batch_size,
            "learning_rate_multiplier": config.learning_rate_multiplier,
            "n_epochs": config.n_epochs,
        }

        def queued(j: dict[str, Any]) -> None:
            j["status"] = "queued"
            j["hyperparameters"] = dict(resolved)
            j["method"][j["method"]["type"]] = {"hyperparameters": dict(resolved)}
            j["_events"].append(event("Files validated, moving job to queued state"))

        if self._update(job_id, queued) is not None:
            self._to_train.put(_Validated(job_id, training, validation, config))

    def _train(self, item: _Validated, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is None or job["status"] in TERMINAL:
            return
        started = time.time()

        def running(j: dict[str, Any]) -> None:
            j["status"] = "running"
            j["_events"].append(event("Fine-tuning job started"))

        if self._update(job_id, running) is None:
            return
        model_name = job["_model_name"]

        def on_epoch(report: EpochReport) -> None:
            elapsed = time.time() - started
            eta = int(started + elapsed / report.epoch * report.n_epochs)
            self._update(job_id, lambda j: self._record_epoch(j, report, model_name, eta))

        try:
            result = train(
                item.training,
                item.validation,
                item.config,
                base_model=job["model"],
                on_epoch=on_epoch,
                should_stop=lambda: self._stopping.is_set() or self._is_cancelled(job_id),
            )
        except TrainingCancelled:
            return  # cancelled (already recorded) or shutting down (resumed on restart)

        evaluation = result.evaluation.as_dict()
        evaluation["seconds"] = round(result.seconds, 3)
        checkpoint_names = {f"{model_name}:ckpt-step-{step}": step for step in result.model.checkpoints}
        self.catalog.register(
            job_id=job_id, model_id=model_name, checkpoints=checkpoint_names, model=result.model
        )
        metrics_file = self.store.add_file_bytes(
            filename="step_metrics.csv", purpose="fine-tune-results", data=_step_metrics_csv(result.steps)
        )
        evaluation_file = self.store.add_file_bytes(
            filename="evaluation.json",
            purpose="fine-tune-results",
            data=json.dumps(evaluation, indent=2).encode(),
        )
        summary = (
            f"Evaluation on the {evaluation['split']} split ({evaluation['examples']} examples): "
            f"tool-selection accuracy {evaluation['base_tool_accuracy']:.1%} (local-base) → "
            f"{evaluation['tuned_tool_accuracy']:.1%} (tuned); argument exact match "
            f"{evaluation['base_argument_exact_match']:.1%} → {evaluation['tuned_argument_exact_match']:.1%}"
        )

        def succeeded(j: dict[str, Any]) -> None:
            j["_events"].append(event(summary, kind="metrics", data=evaluation))
            j["_events"].append(event(f"New fine-tuned model created: {model_name}"))
            j["_events"].append(event("The job has successfully completed"))
            j["status"] = "succeeded"
            j["fine_tuned_model"] = model_name
            j["trained_tokens"] = result.trained_tokens
            j["finished_at"] = int(time.time())
            j["estimated_finish"] = None
            j["result_files"] = [metrics_file["id"], evaluation_file["id"]]
            j["evaluation"] = evaluation

        if self._update(job_id, succeeded) is None:  # cancelled at the last moment: drop the model
            self.catalog.forget(model_name)

    def _examples(self, file_id: str, kind: str, minimum: int) -> list[Any]:
        record = self.store.get_file(file_id)
        if record is None:
            raise TrainingFileError(f"{kind} file {file_id} no longer exists")
        data = self.store.file_content(file_id)
        check_argument_strings(data)
        return parse_training_file(data, kind=kind, min_examples=minimum)

    @staticmethod
    def _record_epoch(job: dict[str, Any], report: EpochReport, model_name: str, eta: int) -> None:
        message = f"Step {report.step}/{report.total_steps}: training loss={report.train_loss:.4f}"
        if report.valid_loss is not None:
            message += f", validation loss={report.valid_loss:.4f}"
        data = {
            "step": report.step,
            "total_steps": report.total_steps,
            "epoch": report.epoch,
            "n_epochs": report.n_epochs,
            "train_loss": round(report.train_loss, 6),
            "train_mean_token_accuracy": round(report.train_accuracy, 6),
            "valid_loss": None if report.valid_loss is None else round(report.valid_loss, 6),
            "valid_mean_token_accuracy": None
            if report.valid_accuracy is None
            else round(report.valid_accuracy, 6),
            "full_valid_loss": None if report.valid_loss is None else round(report.valid_loss, 6),
            "full_valid_mean_token_accuracy": None
            if report.valid_accuracy is None
            else round(report.valid_accuracy, 6),
        }
        job["_events"].append(event(message, kind="metrics", data=data))
        job["_events"].append(event(f"Checkpoint created at step {report.step}"))
        job["_checkpoints"].append(
            {
                "id": new_id("ftckpt-"),
                "object": "fine_tuning.job.checkpoint",
                "created_at": int(time.time()),
                "fine_tuned_model_checkpoint": f"{model_name}:ckpt-step-{report.step}",
                "fine_tuning_job_id": job["id"],
                "metrics": {
                    key: value
                    for key, value in data.items()
                    if key not in {"epoch", "n_epochs", "total_steps"}
                },
                "step_number": report.step,
            }
        )
        del job["_checkpoints"][:-3]  # the service keeps the last three epochs' checkpoints
        job["estimated_finish"] = eta


def _step_metrics_csv(steps: list[Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
    for step in steps:
        writer.writerow(
            [
                step.step,
                f"{step.train_loss:.6f}",
                f"{step.train_accuracy:.6f}",
                "" if step.valid_loss is None else f"{step.valid_loss:.6f}",
                "" if step.valid_accuracy is None else f"{step.valid_accuracy:.6f}",
            ]
        )
    return buffer.getvalue().encode()

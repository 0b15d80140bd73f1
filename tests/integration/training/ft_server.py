"""A local stand-in for the OpenAI fine-tuning API, with fault injection, for the training tests.

Speaks what the ``openai`` SDK sends for files and fine-tuning jobs, under both ``/v1/…`` (OpenAI and
OpenAI-compatible servers) and ``/openai/…`` (the ``AzureOpenAI`` client's deployment-less routes):

    POST /files (multipart)             GET /files/{id}    GET /files/{id}/content
    POST /fine_tuning/jobs              GET /fine_tuning/jobs?limit&after&metadata[k]=v
    GET  /fine_tuning/jobs/{id}         GET /fine_tuning/jobs/{id}/events     …/checkpoints
    POST /fine_tuning/jobs/{id}/cancel

A job walks through ``plan`` (one snapshot per retrieve). ``faults`` answer matching requests with an
error status (429 + Retry-After, 500 …), drop the connection, or process the request and then drop the
answer (``lose_response``: the job exists but the client never hears of it). Every request is recorded.
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FINAL_STATES = {"succeeded", "failed", "cancelled"}


@dataclass
class Step:
    """One snapshot of a job's life, returned by one retrieve."""

    status: str
    step: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    at_seconds: float = 0.0
    error: dict[str, Any] | None = None
    trained_tokens: int | None = None
    checkpoint: bool = False


def happy_plan(total_steps: int = 30) -> list[Step]:
    return [
        Step("validating_files"),
        Step("queued"),
        Step("running", step=9, total_steps=total_steps, train_loss=0.9, valid_loss=0.95, at_seconds=60),
        Step(
            "running",
            step=18,
            total_steps=total_steps,
            train_loss=0.412,
            valid_loss=0.438,
            at_seconds=120,
            checkpoint=True,
        ),
        Step("succeeded", step=total_steps, total_steps=total_steps, at_seconds=1380, trained_tokens=45230),
    ]


@dataclass
class Fault:
    method: str
    path: str  # regex searched in the path (prefix stripped), e.g. r"^/fine_tuning/jobs$"
    status: int = 500
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    kind: str = "status"  # status | drop | lose_response


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    json: Any


class FineTuneServer:
    def __init__(self) -> None:
        self.plan: list[Step] = happy_plan()
        self.file_polls_before_processed = 1
        self.reject_file_ids: dict[str, str] = {}
        self.reject_next_file: str | None = None
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.file_content: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._job_state: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.start_time = int(time.time()) - 3600
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def root(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def start(self) -> FineTuneServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def job_creations(self) -> int:
        return len(self.jobs)

    # --- behaviour ----------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                fault.times -= 1
                return fault
        return None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    def _file_object(self, file_id: str) -> dict[str, Any]:
        return dict(self.files[file_id])

    def upload(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = self._new_id("file")
        status = "uploaded"
        details = None
        if self.reject_next_file is not None:
            self.reject_file_ids[file_id] = self.reject_next_file
            self.reject_next_file = None
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": status,
            "status_details": details,
        }
        self.file_content[file_id] = data
        self._file_polls = getattr(self, "_file_polls", {})
        self._file_polls[file_id] = 0
        return self._file_object(file_id)

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        self._file_polls[file_id] += 1
        entry = self.files[file_id]
        if self._file_polls[file_id] > self.file_polls_before_processed:
            if file_id in self.reject_file_ids:
                entry["status"] = "error"
                entry["status_details"] = self.reject_file_ids[file_id]
            else:
                entry["status"] = "processed"
        return self._file_object(file_id)

    def create_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if file_id is None:
                continue
            info = self.files.get(file_id)
            if info is None or info["status"] != "processed":
                return 400, _error(
                    f"invalid {key}: file {file_id} is not a processed file", key, "invalid_file"
                )
        job_id = self._new_id("ftjob")
        method = copy.deepcopy(body.get("method")) or {
            "type": "supervised",
            "supervised": {"hyperparameters": {}},
        }
        hyper = dict(method.get("supervised", {}).get("hyperparameters", {}))
        hyper.setdefault("n_epochs", 3)
        hyper.setdefault("batch_size", 1)
        hyper.setdefault("learning_rate_multiplier", 1.0)
        method["supervised"] = {"hyperparameters": hyper}
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": self.start_time,
            "model": body["model"],
            "status": "validating_files",
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "hyperparameters": hyper,
            "method": method,
            "metadata": body.get("metadata"),
            "seed": body.get("seed", 42),
            "suffix": body.get("suffix"),
            "fine_tuned_model": None,
            "finished_at": None,
            "trained_tokens": None,
            "error": None,
            "result_files": [],
            "organization_id": "org-local",
        }
        self.jobs[job_id] = job
        self._job_state[job_id] = {"position": -1, "events": [], "checkpoints": []}
        return 200, dict(job)

    def retrieve_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        state = self._job_state[job_id]
        if job["status"] in FINAL_STATES:
            return dict(job)
        state["position"] = min(state["position"] + 1, len(self.plan) - 1)
        step = self.plan[state["position"]]
        at = self.start_time + int(step.at_seconds)
        job["status"] = step.status
        if step.step is not None:
            valid = f", validation loss={step.valid_loss}" if step.valid_loss is not None else ""
            data: dict[str, Any] = {"step": step.step, "total_steps": step.total_steps}
            if step.train_loss is not None:
                data["train_loss"] = step.train_loss
            if step.valid_loss is not None:
                data["valid_loss"] = step.valid_loss
            state["events"].append(
                {
                    "id": self._new_id("ftevent"),
                    "object": "fine_tuning.job.event",
                    "created_at": at,
                    "level": "info",
                    "message": f"Step {step.step}/{step.total_steps}: training loss={step.train_loss}{valid}",
                    "type": "metrics",
                    "data": data,
                }
            )
        if step.checkpoint:
            state["checkpoints"].append(
                {
                    "id": self._new_id("ftckpt"),
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": at,
                    "fine_tuned_model_checkpoint": f"ft:{job['model']}:ckpt-step-{step.step}",
                    "fine_tuning_job_id": job_id,
                    "step_number": step.step,
                    "metrics": {
                        "step": step.step,
                        "train_loss": step.train_loss,
                        "valid_loss": step.valid_loss,
                    },
                }
            )
        state["events"].append(
            {
                "id": self._new_id("ftevent"),
                "object": "fine_tuning.job.event",
                "created_at": at,
                "level": "error" if step.status == "failed" else "info",
                "message": f"Job status: {step.status}",
                "type": "message",
                "data": {},
            }
        )
        if step.status in FINAL_STATES:
            job["finished_at"] = at
        if step.status == "failed":
            job["error"] = step.error or {
                "code": "invalid_training_file",
                "message": "bad data",
                "param": None,
            }
        if step.status == "succeeded":
            job["fine_tuned_model"] = f"ft:{job['model']}:{job.get('suffix') or 'model'}:{job_id[-6:]}"
            job["trained_tokens"] = step.trained_tokens
            rows = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
            rows += "9,0.9,0.5,0.95,0.5\n18,0.412,0.7,0.438,0.7\n30,0.318,0.8,,\n30,,,0.342,0.82\n"
            result_id = self._new_id("file")
            encoded = base64.b64encode(rows.encode())
            self.files[result_id] = {
                "id": result_id,
                "object": "file",
                "bytes": len(encoded),
                "created_at": at,
                "filename": "step_metrics.csv",
                "purpose": "fine-tune-results",
                "status": "processed",
                "status_details": None,
            }
            self.file_content[result_id] = encoded
            job["result_files"] = [result_id]
        return dict(job)

    def list_jobs(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        params = dict(query)
        limit = int(params.get("limit", 20))
        wanted = {k[len("metadata[") : -1]: v for k, v in query if k.startswith("metadata[")}
        jobs = sorted(self.jobs.values(), key=lambda job: job["id"], reverse=True)
        if wanted:
            jobs = [j for j in jobs if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        after = params.get("after")
        if after:
            ids = [job["id"] for job in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        page = jobs[:limit]
        return {"object": "list", "data": page, "has_more": len(jobs) > limit}

    def cancel(self, job_id: str) -> tuple[int, dict[str, Any]]:
        job = self.jobs[job_id]
        if job["status"] in FINAL_STATES:
            return 400, _error(f"Job {job_id} has already {job['status']}", None, "invalid_request")
        job["status"] = "cancelled"
        job["finished_at"] = int(time.time())
        return 200, dict(job)

    # --- HTTP -------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # header and body go out in separate writes: without this, delayed ACKs add ~40 ms each
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/json" if not isinstance(body, bytes) else "application/octet-stream",
                )
                self.send_header("Content-Length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.close()

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                for prefix in ("/v1", "/openai"):
                    if path.startswith(prefix + "/"):
                        path = path[len(prefix) :]
                        break
                query = parse_qsl(parts.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = self.headers.get("Content-Type", "")
                body: Any = None
                if raw and content_type.startswith("application/json"):
                    body = json.loads(raw)
                with server._lock:
                    server.requests.append(
                        Recorded(
                            method, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                    fault = server._take_fault(method, path)
                    if fault is not None and fault.kind == "drop":
                        self._drop()
                        return
                    if fault is not None and fault.kind == "status":
                        self._answer(
                            fault.status,
                            fault.body or _error(f"injected HTTP {fault.status}", None, "injected"),
                            fault.headers,
                        )
                        return
                    status, answer = server._route(method, path, query, raw, content_type, body)
                    if fault is not None and fault.kind == "lose_response":
                        self._drop()
                        return
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        return Handler

    def _route(
        self, method: str, path: str, query: list[tuple[str, str]], raw: bytes, content_type: str, body: Any
    ) -> tuple[int, Any]:
        if method == "POST" and path == "/files":
            fields = _multipart(raw, content_type)
            filename, data = fields["file"]
            return 200, self.upload(filename or "upload.jsonl", fields["purpose"][1].decode(), data)
        match = re.fullmatch(r"/files/([^/]+)(/content)?", path)
        if method == "GET" and match:
            file_id = match.group(1)
            if file_id not in self.files:
                return 404, _error(f"No such File object: {file_id}", "id", "not_found")
            if match.group(2):
                return 200, self.file_content[file_id]
            return 200, self.retrieve_file(file_id)
        if path == "/fine_tuning/jobs":
            if method == "POST":
                return self.create_job(body or {})
            return 200, self.list_jobs(query)
        match = re.fullmatch(r"/fine_tuning/jobs/([^/]+)(/events|/checkpoints|/cancel)?", path)
        if match:
            job_id, sub = match.group(1), match.group(2)
            if job_id not in self.jobs:
                return 404, _error(f"Job {job_id} not found", "fine_tune_id", "not_found")
            if sub is None and method == "GET":
                return 200, self.retrieve_job(job_id)
            if sub == "/cancel" and method == "POST":
                return self.cancel(job_id)
            state = self._job_state[job_id]
            if sub == "/events":
                limit = int(dict(query).get("limit", 20))
                data = list(reversed(state["events"]))[:limit]
                return 200, {"object": "list", "data": data, "has_more": False}
            if sub == "/checkpoints":
                data = list(reversed(state["checkpoints"]))
                return 200, {"object": "list", "data": data, "has_more": False}
        return 404, _error(f"no route {method} {path}", None, "not_found")


def _error(message: str, param: str | None, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        fields[str(name)] = (part.get_filename(), payload)
    return fields

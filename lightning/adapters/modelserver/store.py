"""Persistence of the model server: files, fine-tuning jobs and models under one data directory.

Layout (everything survives a restart)::

    <data_dir>/files/<file-id>.json      the File object      <data_dir>/files/<file-id>.data   its bytes
    <data_dir>/jobs/<ftjob-id>.json      the job object with its events and checkpoints
    <data_dir>/models/index.json         fine-tuned model names → artifact (and checkpoint step)
    <data_dir>/models/<ftjob-id>.joblib  the trained ``TunedModel``

JSON documents are written atomically (temporary file + ``os.replace``), so a
crash never leaves half a record. All access goes through one lock; the app
and the job runner share one ``Store``. Records are plain dicts in the API's
shapes, so the app returns them as they are.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class Store:
    """Files, jobs and models of one server; loaded from disk at start, written through on change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_dir = root / "files"
        self.jobs_dir = root / "jobs"
        self.models_dir = root / "models"
        for folder in (self.files_dir, self.jobs_dir, self.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._files = self._load(self.files_dir)
        self._jobs = self._load(self.jobs_dir)
        index = self.models_dir / "index.json"
        self._models: dict[str, dict[str, Any]] = _read_json(index) if index.exists() else {}
        self._seq: int = max(
            [record.get("_seq", 0) for record in [*self._files.values(), *self._jobs.values()]] or [0]
        )

    @staticmethod
    def _load(folder: Path) -> dict[str, dict[str, Any]]:
        records = []
        for path in folder.glob("*.json"):
            try:
                records.append(_read_json(path))
            except (OSError, ValueError):
                continue  # a torn or foreign file is not ours to serve
        records.sort(key=lambda record: record.get("_seq", 0))
        return {record["id"]: record for record in records if isinstance(record, dict) and "id" in record}

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- files -------------------------------------------------------------------------------------

    def add_file(self, *, filename: str, purpose: str, source: Path, size: int) -> dict[str, Any]:
        """Register an uploaded file; ``source`` is moved into the store."""
        with self._lock:
            file_id = new_id("file-")
            os.replace(source, self.files_dir / f"{file_id}.data")
            record = {
                "id": file_id,
                "object": "file",
                "bytes": size,
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "status_details": None,
                "expires_at": None,
                "_seq": self._next_seq(),
            }
            _write_json(self.files_dir / f"{file_id}.json", record)
            self._files[file_id] = record
            return copy.deepcopy(record)

    def add_file_bytes(self, *, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        tmp = self.files_dir / f".upload-{secrets.token_hex(6)}.tmp"
        tmp.write_bytes(data)
        return self.add_file(filename=filename, purpose=purpose, source=tmp, size=len(data))

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._files.get(file_id)
            return copy.deepcopy(record) if record else None

    def list_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            records = [r for r in self._files.values() if purpose is None or r["purpose"] == purpose]
            return [copy.deepcopy(record) for record in reversed(records)]

    def file_content(self, file_id: str) -> bytes:
        return (self.files_dir / f"{file_id}.data").read_bytes()

    def delete_file(self, file_id: str) -> bool:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                return False
            for suffix in (".json", ".data"):
                (self.files_dir / f"{file_id}{suffix}").unlink(missing_ok=True)
            return True

    # --- jobs --------------------------------------------------------------------------------------

    def add_job(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = copy.deepcopy(record)
            record["_seq"] = self._next_seq()
            _write_json(self.jobs_dir / f"{record['id']}.json", record)
            self._jobs[record["id"]] = record
            return copy.deepcopy(record)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._jobs.get(job_id)
            return copy.deepcopy(record) if record else None

    def list_jobs(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            return [copy.deepcopy(record) for record in reversed(self._jobs.values())]

    def update_job(self, job_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the stored record under the lock and persist it; returns a copy."""
        with self._lock:
            record = self._jobs[job_id]
            updated = copy.deepcopy(record)
            change(updated)
            _write_json(self.jobs_dir / f"{job_id}.json", updated)
            self._jobs[job_id] = updated
            return copy.deepcopy(updated)

    # --- models ------------------------------------------------------------------------------------

    def artifact_path(self, job_id: str) -> Path:
        return self.models_dir / f"{job_id}.joblib"

    def add_models(self, entries: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._models.update(copy.deepcopy(entries))
            _write_json(self.models_dir / "index.json", self._models)

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._models.get(model_id)
            return copy.deepcopy(entry) if entry else None

    def list_models(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(name, copy.deepcopy(entry)) for name, entry in self._models.items()]

    def delete_model(self, model_id: str) -> bool:
        """Forget a fine-tuned model and its checkpoints (the artifact is removed when none is left)."""
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None or entry.get("checkpoint_step") is not None:
                return False
            doomed = [name for name, other in self._models.items() if other["artifact"] == entry["artifact"]]
            for name in doomed:
                del self._models[name]
            _write_json(self.models_dir / "index.json", self._models)
            (self.models_dir / entry["artifact"]).unlink(missing_ok=True)
            return True

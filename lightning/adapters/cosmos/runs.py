"""CosmosRunStore: fine-tuning runs in Cosmos DB container ``rl_training_runs`` (pk ``/agent_id``).

Built by the Container when ``LIGHTNING_STORE=cosmos``. Two kinds of item share the container
(``doc_type``):

* ``run`` — the ``TrainingRun`` (``id`` = run id) plus ``created_us`` for ordering;
* ``run_key`` — ``id`` = ``key-<idempotency key>``, holding the run id. Creating it is the atomic
  "claim" that makes ``create_or_get`` idempotent under concurrency (Cosmos ids are unique per
  partition, and the idempotency key includes the agent id). If a process dies between the claim and
  the run, the next ``create_or_get`` finishes the job.

Writes are guarded by the item's ``_etag`` (``IfNotModified``): a stale etag is ``Conflict``.
* ``job_key`` — ``id`` = ``job-<provider job id>``, holding the run id: a job id belongs to one run
  (per agent partition; the provider issues job ids, so collisions across agents do not happen).
"""

from __future__ import annotations

from typing import Any

from lightning.adapters.cosmos.client import (
    RUNS,
    CosmosAccount,
    container,
    cosmos_errors,
    find_one,
    if_match,
    micros,
    query_pages,
    status_of,
    strip_system,
)
from lightning.domain.errors import Conflict, NotFound
from lightning.domain.training import TrainingRun

_HINT = "list runs with list-training-runs"


def _item(run: TrainingRun) -> dict[str, Any]:
    item = run.model_dump(mode="json")
    item["doc_type"] = "run"
    item["created_us"] = micros(run.created_at)
    return item


def _run(item: dict[str, Any]) -> TrainingRun:
    run = TrainingRun.model_validate(strip_system(item))
    return run.model_copy(update={"etag": item.get("_etag")})


class CosmosRunStore:
    """RunStore over the ``rl_training_runs`` container."""

    def __init__(self, container_proxy: Any) -> None:
        self._c = container_proxy
        self._claimed_jobs: set[tuple[str, str]] = set()

    @classmethod
    def in_account(cls, account: CosmosAccount) -> CosmosRunStore:
        """The store on the account's ``rl_training_runs`` container."""
        return cls(container(account, RUNS))

    def _find(self, where: str, params: list[dict[str, Any]], ident: str) -> dict[str, Any] | None:
        with cosmos_errors("training run", ident):
            return find_one(self._c, f"c.doc_type = 'run' AND {where}", params)

    def _claim(self, claim: dict[str, Any]) -> dict[str, Any] | None:
        """Create a claim item; None when it is ours, else the claim already held (``{}`` if it vanished)."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        try:
            self._c.create_item(claim)
        except CosmosHttpResponseError as exc:
            if status_of(exc) != 409:
                raise
            held = find_one(
                self._c,
                "c.id = @id AND c.agent_id = @agent_id",
                [{"name": "@id", "value": claim["id"]}, {"name": "@agent_id", "value": claim["agent_id"]}],
                partition_key=claim["agent_id"],
            )
            return held or {}
        return None

    def create_or_get(self, run: TrainingRun) -> tuple[TrainingRun, bool]:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        claim = {
            "id": f"key-{run.idempotency_key}",
            "agent_id": run.agent_id,
            "doc_type": "run_key",
            "run_id": run.id,
        }
        with cosmos_errors("training run", run.id):
            held = self._claim(claim)
            if held is not None:
                run_id = str(held.get("run_id") or run.id)
                existing = self._find("c.id = @id", [{"name": "@id", "value": run_id}], run_id)
                if existing is not None:
                    return _run(existing), False
                # The claimer died before writing its run: write it under the claimed id.
                run = run.model_copy(update={"id": run_id})
            try:
                return _run(self._c.create_item(_item(run))), True
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 409:
                    raise Conflict(f"training run {run.id} already exists", ident=run.id) from exc
                raise

    def get(self, run_id: str) -> TrainingRun:
        item = self._find("c.id = @id", [{"name": "@id", "value": run_id}], run_id)
        if item is None:
            raise NotFound("training run", run_id, _HINT)
        return _run(item)

    def get_by_job_id(self, job_id: str) -> TrainingRun:
        item = self._find("c.job_id = @job_id", [{"name": "@job_id", "value": job_id}], job_id)
        if item is None:
            raise NotFound("training job", job_id, _HINT)
        return _run(item)

    def find_by_key(self, idempotency_key: str) -> TrainingRun | None:
        item = self._find(
            "c.idempotency_key = @key", [{"name": "@key", "value": idempotency_key}], idempotency_key
        )
        return _run(item) if item is not None else None

    def _claim_job(self, run: TrainingRun) -> None:
        """Make ``run.job_id`` belong to ``run`` alone (a ``job-<id>`` item in the agent's partition)."""
        if run.job_id is None or (run.id, run.job_id) in self._claimed_jobs:
            return
        claim = {"id": f"job-{run.job_id}", "agent_id": run.agent_id, "doc_type": "job_key", "run_id": run.id}
        with cosmos_errors("training job", run.job_id):
            held = self._claim(claim)
            if held is not None and held.get("run_id") != run.id:
                raise Conflict(
                    f"job {run.job_id} already belongs to training run {held.get('run_id')}",
                    ident=run.job_id,
                )
        self._claimed_jobs.add((run.id, run.job_id))

    def update(self, run: TrainingRun) -> TrainingRun:
        from azure.cosmos.exceptions import CosmosHttpResponseError

        self._claim_job(run)
        with cosmos_errors("training run", run.id):
            try:
                return _run(self._c.replace_item(run.id, _item(run), **if_match(run.etag)))
            except CosmosHttpResponseError as exc:
                if status_of(exc) == 412:
                    raise Conflict(
                        f"training run {run.id} changed since it was read (etag {run.etag}); read it again",
                        ident=run.id,
                    ) from exc
                if status_of(exc) == 404:
                    raise NotFound("training run", run.id, _HINT) from exc
                raise

    def list(self, *, agent_id: str | None = None, limit: int = 50) -> list[TrainingRun]:
        where = "c.doc_type = 'run'"
        params: list[dict[str, Any]] = []
        if agent_id is not None:
            where += " AND c.agent_id = @agent_id"
            params.append({"name": "@agent_id", "value": agent_id})
        sql = f"SELECT TOP {max(int(limit), 1)} * FROM c WHERE {where} ORDER BY c.created_us DESC"
        with cosmos_errors("training runs", agent_id or "*"):
            return [_run(item) for item in query_pages(self._c, sql, params, partition_key=agent_id)]

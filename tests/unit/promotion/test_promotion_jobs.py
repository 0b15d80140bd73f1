"""Promotion jobs (POST …/promote → queue → worker): progress on the version, failures recorded by kind."""

from __future__ import annotations

import pytest

from lightning.domain.errors import InvalidInput, ProviderError, TransientProviderError
from lightning.domain.messages import FINE_TUNE_DONE, PromoteModel, parse_done_message
from lightning.services.promotion import PromotionRequest, request_promotion, run_promotion_job
from tests.fakes.queue import InMemoryQueue
from tests.unit.promotion.conftest import AGENT, FT_MODEL, World


def _queued(world: World, queue: InMemoryQueue, **request: object) -> PromoteModel:
    request_promotion(
        PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, mark_active=True, **request),  # type: ignore[arg-type]
        world.ports(),
        queue=queue,
    )
    [message] = queue.receive(FINE_TUNE_DONE)
    queue.complete(message)
    parsed = parse_done_message(message.body)
    assert isinstance(parsed, PromoteModel)
    return parsed


def test_the_job_reports_its_phases_and_the_gates_progress(world: World) -> None:
    phases: list[tuple[str, int, int]] = []
    original = world.models.update

    def spy(version):  # type: ignore[no-untyped-def]
        if version.promotion is not None:
            job = version.promotion
            phases.append((job.phase, job.replayed, job.planned))
        return original(version)

    world.models.update = spy  # type: ignore[method-assign]
    message = _queued(world, InMemoryQueue())
    outcome = run_promotion_job(message, *world.args())
    assert outcome is not None
    assert outcome.action == "promoted"
    seen = list(dict.fromkeys(phases))
    assert seen[0] == ("queued", 0, 0)
    assert ("deploying", 0, 0) in seen
    assert ("gating", 30, 30) in seen
    assert ("rolling_out", 30, 30) in seen
    assert seen[-1] == ("done", 30, 30)
    job = world.models.get(AGENT, FT_MODEL).promotion
    assert job is not None
    assert (job.state, job.action, job.attempts) == ("succeeded", "promoted", 1)


def test_a_permanent_failure_fails_the_job_and_a_transient_one_queues_it_again(world: World) -> None:
    queue = InMemoryQueue()
    message = _queued(world, queue)
    world.chat.down.add("local-base")  # the baseline is unreachable: transient
    with pytest.raises(ProviderError):
        run_promotion_job(message, *world.args())
    job = world.models.get(AGENT, FT_MODEL).promotion
    assert job is not None
    assert job.state == "failed"
    world.chat.down.clear()
    message = _queued(world, queue)  # a finished job: a new request makes a new job
    version = world.models.get(AGENT, FT_MODEL)
    world.models.update(version.model_copy(update={"status": "registered", "deployment_name": None}))

    def unavailable(**_: object) -> str:
        raise TransientProviderError("503 from the deployments API", status_code=503)

    world.deployer.deploy = unavailable  # type: ignore[method-assign]
    with pytest.raises(TransientProviderError):
        run_promotion_job(message, *world.args())
    job = world.models.get(AGENT, FT_MODEL).promotion
    assert job is not None
    assert (job.state, job.attempts) == ("queued", 1)
    assert "retrying" in (job.error or "")


def test_a_replaced_or_finished_job_message_does_nothing(world: World) -> None:
    queue = InMemoryQueue()
    first = _queued(world, queue, dry_run=True)
    assert run_promotion_job(first, *world.args()) is not None
    assert run_promotion_job(first, *world.args()) is None  # repeated delivery
    second = _queued(world, queue)
    assert second.job_id != first.job_id
    assert run_promotion_job(first, *world.args()) is None  # replaced


def test_bad_requests_are_refused_before_anything_is_queued(world: World) -> None:
    queue = InMemoryQueue()
    with pytest.raises(InvalidInput, match="no training run"):
        request_promotion(
            PromotionRequest(agent_id=AGENT, model_name="ft:never-trained"), world.ports(), queue=queue
        )
    assert queue.receive(FINE_TUNE_DONE) == []
    assert world.models.list(AGENT) == []

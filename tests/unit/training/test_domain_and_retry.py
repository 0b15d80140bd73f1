"""Pure rules: suffixes, the forward-only state machine, rates and ETA; the retry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lightning.adapters.retry import RetryPolicy, parse_retry_after
from lightning.domain.errors import Conflict, InvalidInput, ProviderError, TransientProviderError
from lightning.domain.training import (
    TrainingRun,
    check_suffix,
    derive_suffix,
    epoch_of,
    progress_percent,
    remaining_seconds,
    run_state_for,
    step_rate,
)

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


def make_run(**changes: object) -> TrainingRun:
    values: dict[str, object] = {
        "id": "run-1",
        "agent_id": "a",
        "dataset_name": "d",
        "dataset_sha256": "s",
        "base_model": "m",
        "provider": "fake",
        "idempotency_key": "k",
    }
    values.update(changes)
    return TrainingRun.model_validate(values)


@pytest.mark.parametrize(
    ("agent_id", "suffix"),
    [
        ("autonomous-agent", "autonomous-agent"),
        ("approval-agent", "approval-agent"),
        ("My Agent: v2 (beta) with a long name", "my-agent-v2-beta-w"),
        ("???", "lightning"),
    ],
)
def test_derived_suffix_fits_the_rule(agent_id: str, suffix: str) -> None:
    derived = derive_suffix(agent_id)
    assert derived == suffix
    assert len(derived) <= 18
    assert check_suffix(derived) == derived


@pytest.mark.parametrize("bad", ["", "a:b", "with space", "UPPER", "-lead", "x" * 19])
def test_bad_suffixes_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_suffix(bad)


def test_state_machine_moves_forward_only_and_terminal_is_final() -> None:
    run = make_run().advance("uploading").advance("queued")
    with pytest.raises(Conflict):
        run.advance("uploading")
    assert run.progress_to("uploading").state == "queued"  # a late answer keeps the state
    running = run.progress_to("running", error=None)
    assert running.state == "running"
    assert running.started_at is not None
    done = running.progress_to("succeeded", fine_tuned_model="ft:m:x")
    assert done.finished_at is not None
    assert done.terminal
    assert done.progress_to("failed", error="late") is done


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("validating_files", "validating_files"),
        ("pending", "queued"),
        ("notRunning", "queued"),
        ("running", "running"),
        ("succeeded", "succeeded"),
        ("canceled", "cancelled"),
        ("weird", None),
    ],
)
def test_provider_statuses_map_to_states(status: str, state: str | None) -> None:
    assert run_state_for(status) == state


def test_rate_epoch_progress_and_eta() -> None:
    assert step_rate([(T0, 10)]) is None
    assert step_rate([(T0 + timedelta(seconds=60), 20), (T0, 10)]) == pytest.approx(10 / 60)
    assert [epoch_of(s, 30, 3) for s in (1, 10, 11, 20, 30)] == [1, 1, 2, 2, 3]
    run = make_run(state="running", metrics={"step": 15, "total_steps": 30, "steps_per_second": 0.5})
    assert progress_percent(run) == 50
    assert remaining_seconds(run) == pytest.approx(30)
    estimated = make_run(state="running", metrics={"estimated_finish": T0 + timedelta(minutes=12)})
    assert remaining_seconds(estimated, now=T0) == pytest.approx(720)
    assert progress_percent(make_run(state="succeeded")) == 100


def test_retry_after_is_honored_and_backoff_is_jittered_and_bounded() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_attempts=4, base_delay=1.0, max_delay=3.0, sleep=sleeps.append, random=lambda: 0.5
    )
    errors = [
        TransientProviderError("429", status_code=429, retry_after=7.0),
        TransientProviderError("503", status_code=503),
        TransientProviderError("503", status_code=503),
    ]

    def call() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    assert policy.call(call, what="x") == "ok"
    assert sleeps == [7.0, 1.0, 1.5]  # Retry-After, then 0.5 x min(3, 1·2^n)

    sleeps.clear()
    with pytest.raises(TransientProviderError, match="still failing after 4 attempts"):
        policy.call(lambda: (_ for _ in ()).throw(TransientProviderError("503")), what="x")
    assert len(sleeps) == 3

    sleeps.clear()
    with pytest.raises(ProviderError, match="quota"):
        policy.call(lambda: (_ for _ in ()).throw(ProviderError("quota")), what="x")
    assert sleeps == []  # permanent: never retried


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None

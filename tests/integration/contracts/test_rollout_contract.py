"""The AgentRollout contract: ``LocalRollout``, the recording fake and ``KubernetesRollout`` (the real
``kubernetes`` client against the apps/v1 stand-in) keep the promises of ``lightning.ports.rollout``.

The promise that matters most: whatever fails after the patch, the result says where the Deployment
ended up — ``observed_env`` equals the env the cluster really has (read here around the adapter), or is
``None`` and the result counts as diverged. Each fault scenario names how it must end:

- ``rolled_out``: the adapter rode the fault out; the new env runs;
- ``restored``: the rollout failed and the previous env is back;
- ``diverged``: the previous env could not be put back; the report names the env that runs;
- ``unknown``: nothing could be read after the last change; the report says so (``None``).

Kubernetes runs on a manual clock (``tests.fakes.clock``): time budgets and backoff pass in simulated
seconds, so no scenario depends on how fast this machine is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pytest

from lightning.adapters.kubernetes.rollout import KubernetesRollout, LocalRollout
from lightning.domain.errors import LightningError
from lightning.ports.rollout import AgentRollout
from tests.fakes.clock import ManualClock
from tests.fakes.rollout import RecordingRollout

NS, NAME = "mcp-agents", "autonomous-agent"
PREVIOUS = {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:gpt-4o-mini:autonomous-agent:good"}
CANDIDATE = {"USE_TUNED_MODEL": "true", "TUNED_MODEL_NAME": "ft:gpt-4o-mini:autonomous-agent:candidate"}
BUDGET = 60.0
"""The Kubernetes adapter's time budget for one roll_out, in the manual clock's seconds."""

Ending = Literal["rolled_out", "restored", "diverged", "unknown"]
FOREVER = 10**6


class Cluster(Protocol):
    """An AgentRollout with a Deployment behind it that the test can read and spoil directly."""

    rollout: AgentRollout

    def actual(self) -> dict[str, str | None]:
        """The model env the Deployment has, read around the adapter."""
        ...

    def elapsed(self) -> float:
        """Seconds the adapter spent by its own clock."""
        ...

    def refuse_before_patch(self) -> None: ...

    def inject(self, scenario: Scenario) -> None: ...


class FakeCluster:
    def __init__(self) -> None:
        self.rollout = RecordingRollout({f"{NS}/{NAME}": {**PREVIOUS, "LOG_LEVEL": "info"}})

    def actual(self) -> dict[str, str | None]:
        env = self.rollout.env[f"{NS}/{NAME}"]
        return {name: env.get(name) for name in PREVIOUS}

    def elapsed(self) -> float:
        return 0.0

    def refuse_before_patch(self) -> None:
        self.rollout.refuse = "deployments.apps is forbidden"

    def inject(self, scenario: Scenario) -> None:
        if scenario.ends == "rolled_out":
            return
        self.rollout.fail_next = f"simulated: {scenario.name}"
        self.rollout.restore_fails = scenario.ends == "diverged"
        self.rollout.lose_sight = scenario.ends == "unknown"


class StandInCluster:
    def __init__(self, api: Any) -> None:
        from kubernetes import client as k8s

        self.api = api
        self.clock = ManualClock()
        self.started = self.clock.now
        api.add_deployment(NS, NAME, env={"ENABLE_EPISODE_CAPTURE": "true", **PREVIOUS})
        configuration = k8s.Configuration()
        configuration.host = api.url
        self.rollout = KubernetesRollout(
            api_client=k8s.ApiClient(configuration),
            timeout=BUDGET,
            poll_interval=1.0,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
        )

    def actual(self) -> dict[str, str | None]:
        from tests.standins.kubernetes_api import container_env

        env = container_env(self.api.deployment(NS, NAME))
        return {name: env.get(name) for name in PREVIOUS}

    def elapsed(self) -> float:
        return self.clock.now - self.started

    def refuse_before_patch(self) -> None:
        self.api.forbidden = True

    def inject(self, scenario: Scenario) -> None:
        scenario.kubernetes(self.api)


# --- the fault scenarios --------------------------------------------------------------------------
def _faults(*faults: Any, broken_candidate: bool = False, deadline: bool = True) -> Callable[[Any], None]:
    def inject(api: Any) -> None:
        api.faults.extend(faults)
        if broken_candidate:  # the new pods crash: the rollout never becomes available
            api.fail_when_env = {"TUNED_MODEL_NAME": CANDIDATE["TUNED_MODEL_NAME"]}
        if not deadline:  # ... and the Deployment never says so: only the adapter's budget ends the wait
            api.deadline_reads = FOREVER

    return inject


def _fault(method: str, **kwargs: Any) -> Any:
    from tests.standins.kubernetes_api import Fault

    return Fault(method, **kwargs)


@dataclass(frozen=True)
class Scenario:
    name: str
    ends: Ending
    kubernetes: Callable[[Any], None]


SCENARIOS = [
    Scenario(
        "reads fail for a while after the patch",
        "rolled_out",
        _faults(_fault("GET", times=4, after_patches=1)),
    ),
    Scenario(
        "connections dropped on reads for a while",
        "rolled_out",
        _faults(_fault("GET", kind="drop", times=3, after_patches=1)),
    ),
    Scenario(
        "the patch lands but its answer is lost",
        "rolled_out",
        _faults(_fault("PATCH", kind="apply_then_drop")),
    ),
    Scenario("the patch gets 503 twice", "rolled_out", _faults(_fault("PATCH", status=503, times=2))),
    Scenario("never available: ProgressDeadlineExceeded", "restored", _faults(broken_candidate=True)),
    Scenario(
        "never available and no deadline: the budget runs out",
        "restored",
        _faults(broken_candidate=True, deadline=False),
    ),
    Scenario(
        "reads fail until the budget runs out",
        "restored",
        _faults(_fault("GET", times=FOREVER, after_patches=1)),
    ),
    Scenario(
        "409 conflicts while restoring",
        "restored",
        _faults(_fault("PATCH", status=409, times=3, after_patches=1), broken_candidate=True),
    ),
    Scenario(
        "the restore lands but its answer is lost",
        "restored",
        _faults(_fault("PATCH", kind="apply_then_drop", after_patches=1), broken_candidate=True),
    ),
    Scenario(
        "403 on reads after the patch",
        "restored",
        _faults(_fault("GET", status=403, times=FOREVER, after_patches=1)),
    ),
    Scenario(
        "409 conflicts that never stop while restoring",
        "diverged",
        _faults(_fault("PATCH", status=409, times=FOREVER, after_patches=1), broken_candidate=True),
    ),
    Scenario(
        "403 on everything after the patch (RBAC revoked)",
        "diverged",
        _faults(_fault("*", status=403, times=FOREVER, after_patches=1)),
    ),
    Scenario(
        "the API unavailable (503) from the patch on",
        "unknown",
        _faults(_fault("*", status=503, times=FOREVER, after_patches=1)),
    ),
    Scenario(
        "every connection dropped from the patch on",
        "unknown",
        _faults(_fault("*", kind="drop", times=FOREVER, after_patches=1)),
    ),
]


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(params=["fake", pytest.param("kubernetes", marks=pytest.mark.kubernetes)])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if request.param == "fake":
        yield FakeCluster()
        return
    standin = StandInCluster(request.getfixturevalue("kubernetes_api"))
    yield standin
    standin.rollout.api.api_client.close()


@pytest.fixture(params=["local", "fake", pytest.param("kubernetes", marks=pytest.mark.kubernetes)])
def rollout(request: pytest.FixtureRequest) -> Iterator[AgentRollout]:
    if request.param == "local":
        yield LocalRollout()
    elif request.param == "fake":
        yield FakeCluster().rollout
    else:
        standin = StandInCluster(request.getfixturevalue("kubernetes_api"))
        yield standin.rollout
        standin.rollout.api.api_client.close()


# --- every implementation -------------------------------------------------------------------------
def test_a_rollout_reports_the_env_it_put_in_place(rollout: AgentRollout) -> None:
    result = rollout.roll_out(namespace=NS, deployment=NAME, env=CANDIDATE)
    assert result.ok, result.message
    assert not result.rolled_back
    assert not result.diverged
    assert result.observed_env == CANDIDATE
    assert set(result.previous_env) == set(CANDIDATE)
    assert result.model_dump()["diverged"] is False  # the JSON the CLI and HTTP API show carries it


def test_none_removes_a_name(rollout: AgentRollout) -> None:
    base = {"USE_TUNED_MODEL": "false", "TUNED_MODEL_NAME": None}
    result = rollout.roll_out(namespace=NS, deployment=NAME, env=base)
    assert result.ok, result.message
    assert result.observed_env == base


def test_current_env_names_the_model_variables(rollout: AgentRollout) -> None:
    assert set(rollout.current_env(namespace=NS, deployment=NAME)) == {"USE_TUNED_MODEL", "TUNED_MODEL_NAME"}


# --- implementations with a Deployment behind them ------------------------------------------------
def test_the_cluster_runs_what_the_result_reports(cluster: Cluster) -> None:
    assert cluster.rollout.current_env(namespace=NS, deployment=NAME) == PREVIOUS
    result = cluster.rollout.roll_out(namespace=NS, deployment=NAME, env=CANDIDATE)
    assert result.ok, result.message
    assert result.previous_env == PREVIOUS
    assert cluster.actual() == CANDIDATE == result.observed_env
    assert cluster.rollout.current_env(namespace=NS, deployment=NAME) == CANDIDATE


def test_a_refusal_before_the_patch_raises_and_changes_nothing(cluster: Cluster) -> None:
    cluster.refuse_before_patch()
    with pytest.raises(LightningError):
        cluster.rollout.roll_out(namespace=NS, deployment=NAME, env=CANDIDATE)
    assert cluster.actual() == PREVIOUS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_fault_after_the_patch_ends_with_the_env_the_result_reports(
    cluster: Cluster, scenario: Scenario
) -> None:
    cluster.inject(scenario)

    result = cluster.rollout.roll_out(namespace=NS, deployment=NAME, env=CANDIDATE)

    actual = cluster.actual()
    if result.observed_env is not None:
        assert result.observed_env == actual, result.message  # the report is what the cluster runs
    assert result.previous_env == PREVIOUS
    ends: Ending
    if result.ok:
        ends = "rolled_out"
    elif result.rolled_back:
        ends = "restored"
    else:
        ends = "diverged" if result.observed_env is not None else "unknown"
    assert ends == scenario.ends, result.message
    assert result.diverged == (scenario.ends in ("diverged", "unknown"))
    assert actual == (PREVIOUS if ends == "restored" else CANDIDATE)
    assert cluster.elapsed() <= BUDGET  # waiting and restoring both fit in the one budget

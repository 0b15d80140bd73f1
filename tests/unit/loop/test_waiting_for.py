"""What the loop is waiting for: the report's fields (on fakes) and run-loop's plain line from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightning.commands.loop import _describe
from lightning.domain.training import TrainingRun
from lightning.services.datasets import DatasetPolicy
from lightning.services.loop import IterationReport, LoopPolicy, run_iteration, run_loop
from tests.fakes.bundles import loop_ports
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode
from tests.fakes.runs import InMemoryRunStore

AGENTS = ("approval-agent", "autonomous-agent")  # the registry's agents


class StepClock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 2, 7, 12, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def _run(run_id: str, state: str) -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "id": run_id,
            "agent_id": "autonomous-agent",
            "dataset_name": "autonomous-agent-v1",
            "dataset_sha256": "0" * 64,
            "base_model": "gpt-4o-mini",
            "provider": "fake",
            "idempotency_key": f"key-{run_id}",
            "state": state,
        }
    )


def test_a_pass_reports_the_dataset_thresholds_and_the_fine_tunes_in_flight(tmp_path: Path) -> None:
    runs = InMemoryRunStore()
    runs.create_or_get(_run("run-running", "running"))
    runs.create_or_get(_run("run-done", "succeeded"))
    episodes = InMemoryEpisodeStore([make_episode(f"e{i}") for i in range(3)])
    ports = loop_ports(tmp_path, episodes=episodes, runs=runs)

    report = run_iteration(ports, LoopPolicy(datasets=DatasetPolicy(min_episodes=50)), build_datasets=True)

    assert sorted(report.datasets_skipped) == list(AGENTS)
    assert report.datasets_skipped["approval-agent"] == "0 new good episodes (< 50)"
    assert report.datasets_skipped["autonomous-agent"].endswith("new good episodes (< 50)")
    assert report.fine_tunes_in_flight == {"run-running": "running"}
    assert report.next_dataset_check_seconds is None  # this pass checked


def test_passes_between_dataset_checks_say_when_the_next_one_is(tmp_path: Path) -> None:
    reports: list[IterationReport] = []
    run_loop(
        loop_ports(tmp_path),
        LoopPolicy(datasets=DatasetPolicy(min_episodes=50), dataset_interval_seconds=1800),
        clock=StepClock(),
        interval_seconds=600,
        max_iterations=4,
        on_iteration=lambda _, report: reports.append(report),
    )

    assert [r.next_dataset_check_seconds for r in reports] == [None, 1200.0, 600.0, None]
    assert [bool(r.datasets_skipped) for r in reports] == [True, False, False, True]


def test_an_idle_pass_says_what_it_waits_for_with_thresholds_and_times() -> None:
    report = IterationReport(
        datasets_skipped={
            "autonomous-agent": "12 new good episodes (< 50)",
            "approval-agent": "last dataset approval-agent-v1 is 0.1 h old (< 24 h)",
        }
    )
    assert _describe(1, report) == (
        "pass 1: idle; waiting for autonomous-agent: 12 new good episodes (< 50) | "
        "approval-agent: last dataset approval-agent-v1 is 0.1 h old (< 24 h)"
    )
    assert _describe(2, IterationReport(next_dataset_check_seconds=1740)) == (
        "pass 2: idle; waiting for the next dataset check in 29 min"
    )
    assert _describe(3, IterationReport()) == "pass 3: idle"


def test_a_busy_pass_names_the_fine_tunes_and_an_untrusted_judge_once() -> None:
    reason = "12 of 30 compared episodes needed to check the judge"
    report = IterationReport(
        labeled=4,
        datasets_skipped={"autonomous-agent": f"3 new human-labeled episodes (< 50); {reason}"},
        untrusted={"autonomous-agent": reason, "approval-agent": "0.41 < 0.8 over 40 compared episodes"},
        fine_tunes_in_flight={"run-1": "running"},
    )
    assert _describe(7, report) == (
        "pass 7: labeled 4; waiting for autonomous-agent: 3 new human-labeled episodes (< 50); "
        f"{reason} | approval-agent: judge not trusted (0.41 < 0.8 over 40 compared episodes); datasets from "
        "human labels only | fine-tune run-1 (running)"
    )

"""The hands-off loop on the local host: episodes in → labeled → dataset → fine-tune → gated promotion.

Real parts only: the SQLite store and queue, the rubric evaluator, the local model server (through
the openai SDK), driven by the ``run-loop`` command as a user runs it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lightning.adapters.modelserver.server import RunningServer
from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.ports.episodes import EpisodeQuery
from tests.e2e.traffic import captured_episodes

AGENT = "autonomous-agent"


@pytest.fixture
def loop_env(use_model_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Container:
    monkeypatch.setenv("DATASET_MIN_EPISODES", "40")
    monkeypatch.setenv("DATASET_MIN_HOURS_BETWEEN", "0")
    monkeypatch.setenv("FINE_TUNE_POLL_SECONDS", "0.2")
    monkeypatch.setenv("LIGHTNING_EVALUATOR", "rubric")
    return Container(get_settings())


def test_run_loop_takes_captured_episodes_to_an_active_model(
    loop_env: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    loop_env.episodes.add(captured_episodes(240, seed=5, wrong_share=0.3, prefix="loop"))

    code = main(["run-loop", "--until-idle", "--interval", "0.2", "--max-iterations", "200", "--json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    passes = [json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00") if chunk.strip()]
    assert passes[0]["labeled"] == 240
    assert len(passes[0]["datasets_built"]) == 1
    assert any(p["promotions"] for p in passes), passes

    assert loop_env.episodes.count(EpisodeQuery(agent_id=AGENT, labeled=False)) == 0
    [run] = loop_env.runs.list(agent_id=AGENT)
    assert run.state == "succeeded"
    active = loop_env.models.active(AGENT)
    assert active is not None
    assert active.model_name == run.fine_tuned_model
    assert active.dataset_name == passes[0]["datasets_built"][0]
    assert active.decision is not None
    assert active.decision.promote


def test_run_loop_once_with_nothing_to_do_is_idle(
    loop_env: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run-loop", "--once"]) == 0
    # plain output says why it is idle: each agent's threshold (DATASET_MIN_EPISODES=40 here)
    assert capsys.readouterr().out == (
        "pass 1: idle; waiting for approval-agent: 0 new good episodes (< 40) | "
        "autonomous-agent: 0 new good episodes (< 40)\n"
    )


def test_run_loop_says_how_old_the_last_dataset_is_and_which_fine_tune_it_waits_for(
    loop_env: Container, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATASET_MIN_HOURS_BETWEEN", "24")
    loop_env.episodes.add(captured_episodes(120, seed=7, wrong_share=0.2, prefix="wait"))

    # pass 1 labels and builds (no dataset yet); its fine-tune is in flight until the model server is done
    assert main(["run-loop", "--once", "--poll-seconds", "30"]) == 0
    first = capsys.readouterr().out
    [run] = loop_env.runs.list(agent_id=AGENT)
    assert first.startswith("pass 1: labeled 120 | built autonomous-agent-")
    assert f"fine-tune {run.id} (" in first

    # the next run-loop finds the dataset minutes old: it says so, with the threshold
    assert main(["run-loop", "--once", "--poll-seconds", "30"]) == 0
    second = capsys.readouterr().out
    [dataset] = loop_env.datasets.list(agent_id=AGENT)
    assert re.search(
        rf"autonomous-agent: last dataset {re.escape(dataset.name)} is 0\.\d h old \(< 24 h\)", second
    ), second


def test_run_loop_refuses_a_negative_interval(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-loop", "--interval", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --interval")

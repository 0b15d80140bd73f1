"""The fault scenarios that need no kill: queue messages out of the ordinary, labelers racing, a mixed
import file — each against a guarantee of docs/guarantees.md, on real parts (SQLite store and queue)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.adapters.sqlite.db import SqliteDatabase
from lightning.adapters.sqlite.episodes import SqliteEpisodeStore
from lightning.adapters.sqlite.queue import SqliteQueue
from lightning.bootstrap import Container
from lightning.cli import main
from lightning.config import get_settings
from lightning.domain.episode import Label
from lightning.domain.messages import FINE_TUNE_DONE, FineTuneDone
from lightning.ports.bundles import LabelingPorts
from lightning.ports.episodes import EpisodeQuery
from lightning.services.labeling import LabelBatchRequest, label_batch
from lightning.services.promotion import PromotionRequest, promote_and_roll_out, request_promotion
from lightning.services.queue_worker import drain
from tests.fakes.datasets import labeled_episode
from tests.unit.promotion.conftest import AGENT, FT_MODEL, World

pytestmark = pytest.mark.faults


def _queue(tmp_path: Path, max_deliveries: int = 3) -> SqliteQueue:
    return SqliteQueue(SqliteDatabase(tmp_path / "queue.db"), max_delivery_count=max_deliveries)


def _promote(world: World) -> Any:
    def handle(body: dict[str, Any]) -> object:
        from lightning.domain.messages import parse_done_message

        return promote_and_roll_out(parse_done_message(body), *world.args())

    return handle


def test_duplicate_completion_messages_promote_and_roll_out_once(world: World, tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    done = FineTuneDone(run_id="run-1", agent_id=AGENT, state="succeeded", fine_tuned_model=FT_MODEL)
    queue.send(FINE_TUNE_DONE, done.model_dump(), message_id="run-1")
    queue.send(
        FINE_TUNE_DONE, done.model_dump(), message_id="run-1"
    )  # dropped: same id (duplicate detection)
    queue.send(FINE_TUNE_DONE, done.model_dump(), message_id="run-1-resent")  # a resend under another id
    settled = drain(queue, FINE_TUNE_DONE, handle=_promote(world)) + drain(
        queue, FINE_TUNE_DONE, handle=_promote(world)
    )
    assert [s.outcome for s in settled] == ["completed", "completed"]
    assert len(world.rollout.calls) == 1
    assert world.models.active(AGENT) is not None


def test_an_out_of_order_job_message_for_a_replaced_job_changes_nothing(world: World, tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    ports = world.ports()
    request_promotion(PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, dry_run=True), ports, queue=queue)
    [old] = queue.receive(FINE_TUNE_DONE)
    queue.abandon(old)  # not handled yet...
    version = world.models.get(AGENT, FT_MODEL)
    world.models.update(
        version.model_copy(update={"promotion": version.promotion.model_copy(update={"state": "failed"})})
    )  # type: ignore[union-attr]
    request_promotion(
        PromotionRequest(agent_id=AGENT, model_name=FT_MODEL, mark_active=True), ports, queue=queue
    )
    # ...the newer job's message is handled first, then the old one arrives: it is recognised and dropped.
    messages = sorted(
        queue.receive(FINE_TUNE_DONE, max_messages=5), key=lambda m: m.message_id != old.message_id
    )
    queue.abandon(messages[0])
    handle = _promote(world)
    handle(messages[1].body)
    queue.complete(messages[1])
    assert world.models.active(AGENT) is not None
    [late] = drain(queue, FINE_TUNE_DONE, handle=handle)
    assert late.outcome == "completed"
    assert len(world.rollout.calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "r"},  # fields missing
        {"kind": "promote", "agent_id": AGENT},  # a job with no job
        {"run_id": "run-nope", "agent_id": AGENT, "state": "succeeded"},  # an unknown run
    ],
)
def test_poison_messages_are_delivered_again_then_dead_lettered_and_change_nothing(
    world: World, tmp_path: Path, body: dict[str, Any]
) -> None:
    queue = _queue(tmp_path, max_deliveries=3)
    queue.send(FINE_TUNE_DONE, body, message_id="poison")
    outcomes = [s.outcome for _ in range(5) for s in drain(queue, FINE_TUNE_DONE, handle=_promote(world))]
    assert outcomes == ["abandoned"] * 3
    [dead] = queue.dead_letters(FINE_TUNE_DONE)
    assert (dead.message_id, dead.reason, dead.body) == ("poison", "MaxDeliveryCountExceeded", body)
    assert world.models.list(AGENT) == []
    assert world.rollout.calls == []


def test_two_labelers_racing_never_overwrite_a_human_label() -> None:
    settings = get_settings()
    store = Container(settings).episodes
    store.add([labeled_episode(i, reward=None) for i in range(600)])
    humans = [f"ep-{i:07d}" for i in range(0, 600, 3)]
    agents = YamlAgentRegistry(extra_dir=settings.lightning_agents_dir)
    auto_store = SqliteEpisodeStore.at(settings.sqlite_path)  # a second process's own connection
    errors: list[BaseException] = []

    def auto() -> None:
        try:
            ports = LabelingPorts(episodes=auto_store, agents=agents, evaluator=RubricEvaluator())
            label_batch(LabelBatchRequest(agent_id=AGENT), ports)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    def people() -> None:
        try:
            for episode_id in humans:
                store.save_label(
                    episode_id,
                    Label(source="human", score=0.05, reason="wrong tool", labeled_by="ana"),
                    agent_id=AGENT,
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=auto), threading.Thread(target=people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    by_id = {e.id: e for e in store.query(EpisodeQuery(agent_id=AGENT))}
    for episode_id in humans:
        episode = by_id[episode_id]
        assert episode.label is not None, episode_id
        assert episode.label.source == "human", episode_id
        assert episode.reward == pytest.approx(0.05)


def test_a_mixed_import_file_reports_each_bad_line_and_stores_the_good_ones_or_none_when_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [json.dumps(labeled_episode(i, reward=None).to_document()) for i in range(5)]
    lines = [good[0], "{not json", good[1], json.dumps({"id": "x"}), good[2], good[3], "[1, 2]", good[4]]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")

    assert main(["import-episodes", str(source), "--strict"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert list(Container(get_settings()).episodes.query(EpisodeQuery(agent_id=AGENT))) == []

    main(["import-episodes", str(source), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert [bad["line"] for bad in report["rejected"]] == [2, 4, 7]
    stored = list(Container(get_settings()).episodes.query(EpisodeQuery(agent_id=AGENT)))
    assert len(stored) == 5

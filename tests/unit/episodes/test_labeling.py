"""The labeling service on the in-memory store: human labels, label_batch, and the loop step."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lightning.adapters.evaluators.rubric import RubricEvaluator
from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.domain.agent import AgentDefinition
from lightning.domain.episode import Episode, Label
from lightning.domain.errors import ConfigurationError, InvalidInput, NotFound
from lightning.ports.bundles import LabelingPorts
from lightning.ports.episodes import EpisodeQuery
from lightning.ports.evaluator import Evaluation
from lightning.services.labeling import (
    HumanLabel,
    LabelBatchRequest,
    LabelingPolicy,
    LabelReport,
    label_batch,
    label_episode,
    label_new_episodes,
    labels_needed,
)
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode

T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)
AGENT = "autonomous-agent"
GOOD = {"period": "Q4 2025", "churn_rate": 0.12, "at_risk_customers": 450}


class FixedEvaluator:
    """Scores from a table; raises for ids in ``explode``; calls ``during`` while scoring (races)."""

    name = "fixed"
    version = "1"

    def __init__(self, scores: dict[str, float], *, explode: set[str] = frozenset(), during=None) -> None:  # type: ignore[no-untyped-def, assignment]
        self.scores = scores
        self.explode = explode
        self.during = during
        self.seen: list[str] = []

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        outcomes: list[Evaluation | Exception] = []
        for episode, agent in items:
            try:
                outcomes.append(self.evaluate(episode, agent))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
        self.seen.append(episode.id)
        if self.during is not None:
            self.during(episode)
        if episode.id in self.explode:
            raise RuntimeError(f"cannot score {episode.id}\nsecond line")
        return Evaluation(
            score=self.scores.get(episode.id, 0.5), reason="table", evaluator=self.name, evaluator_version="1"
        )


def human(
    episode_id: str,
    reward: object,
    *,
    store: InMemoryEpisodeStore,
    reason: str = "",
    labeled_by: str = "unknown",
) -> Episode:
    """A person's label through ``label_episode`` (the reward as the user typed it)."""
    outcome = label_episode(
        HumanLabel(episode_id=episode_id, reward=reward, reason=reason, labeled_by=labeled_by),
        episodes=store,
        agents=YamlAgentRegistry(),
    )
    return outcome.episode


def batch(
    *,
    store: InMemoryEpisodeStore,
    agents: YamlAgentRegistry,
    evaluator: Any,
    agent_id: str,
    limit: int | None = None,
    relabel: bool = False,
    policy: LabelingPolicy | None = None,
    on_progress: Any = None,
) -> LabelReport:
    """``label_batch`` with its request and ports spelled out as keywords (what these tests vary)."""
    return label_batch(
        LabelBatchRequest(agent_id=agent_id, limit=limit, relabel=relabel),
        LabelingPorts(episodes=store, agents=agents, evaluator=evaluator),
        policy,
        on_progress=on_progress,
    )


def new_episodes(
    episodes: Any,
    *,
    store: InMemoryEpisodeStore,
    agents: YamlAgentRegistry,
    evaluator: Any,
    policy: LabelingPolicy | None = None,
) -> LabelReport:
    return label_new_episodes(
        episodes, LabelingPorts(episodes=store, agents=agents, evaluator=evaluator), policy
    )


@pytest.fixture
def agents() -> YamlAgentRegistry:
    return YamlAgentRegistry()


def fill(store: InMemoryEpisodeStore, n: int, agent_id: str = AGENT) -> list[str]:
    ids = [f"{agent_id}-{i:03d}" for i in range(n)]
    store.add(
        [
            make_episode(i, agent_id=agent_id, timestamp=T0 + timedelta(seconds=k), result=GOOD)
            for k, i in enumerate(ids)
        ]
    )
    return ids


# --- label_episode ------------------------------------------------------------------------------
def test_label_episode_stores_a_human_label() -> None:
    store = InMemoryEpisodeStore()
    fill(store, 1)
    episode = human(f"{AGENT}-000", "0.9", store=store, reason="Correct tool", labeled_by="alice")
    assert (episode.reward, episode.labeled) == (0.9, True)
    assert episode.label is not None
    assert (episode.label.source, episode.label.reason, episode.label.labeled_by) == (
        "human",
        "Correct tool",
        "alice",
    )


@pytest.mark.parametrize("reward", ["nan", "1.2", "-0.1", "x", "inf"])
def test_label_episode_refuses_bad_rewards_before_touching_the_store(reward: str) -> None:
    store = InMemoryEpisodeStore()
    fill(store, 1)
    with pytest.raises(InvalidInput):
        human(f"{AGENT}-000", reward, store=store)
    assert not store.get(f"{AGENT}-000").labeled


def test_label_episode_unknown_id_is_not_found() -> None:
    with pytest.raises(NotFound, match="episode 'nope' not found"):
        human("nope", 0.5, store=InMemoryEpisodeStore())


def test_a_human_label_overwrites_an_auto_label() -> None:
    store = InMemoryEpisodeStore()
    fill(store, 1)
    store.save_label(f"{AGENT}-000", Label(source="auto", score=0.2))
    assert human(f"{AGENT}-000", 0.95, store=store).label.source == "human"  # type: ignore[union-attr]


# --- label_batch --------------------------------------------------------------------------------
def test_label_batch_labels_unlabeled_episodes_and_counts_accepted(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 5)
    evaluator = FixedEvaluator({ids[0]: 0.9, ids[1]: 0.7, ids[2]: 0.69, ids[3]: 0.1, ids[4]: 1.0})
    report = batch(
        store=store, agents=agents, evaluator=evaluator, agent_id=AGENT, policy=LabelingPolicy(min_score=0.7)
    )
    assert (report.selected, report.labeled, report.skipped, report.failed, report.accepted) == (
        5,
        5,
        0,
        0,
        3,
    )
    assert report.average_score == pytest.approx((0.9 + 0.7 + 0.69 + 0.1 + 1.0) / 5, abs=1e-4)
    # every scored episode keeps its reward, including those under min_score
    assert store.get(ids[3]).reward == 0.1
    label = store.get(ids[3]).label
    assert label is not None
    assert (label.source, label.evaluator, label.evaluator_version, label.labeled_by) == (
        "auto",
        "fixed",
        "1",
        "evaluator:fixed",
    )


def test_label_batch_never_touches_human_labels(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 3)
    human(ids[1], 0.3, store=store, reason="person says poor")
    report = batch(store=store, agents=agents, evaluator=RubricEvaluator(), agent_id=AGENT, relabel=True)
    assert report.labeled == 2
    assert report.skipped == 1
    assert report.failures[0].episode_id == ids[1]
    kept = store.get(ids[1])
    assert kept.label is not None
    assert (kept.reward, kept.label.source) == (0.3, "human")


def test_imported_human_labels_that_say_unlabeled_are_still_protected(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    store.add([make_episode("odd", labeled=False, label={"source": "human", "score": 0.4})])
    report = batch(store=store, agents=agents, evaluator=RubricEvaluator(), agent_id=AGENT)
    assert report.skipped == 1
    assert store.get("odd").label.source == "human"  # type: ignore[union-attr]


def test_a_person_labeling_during_the_batch_wins(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 3)

    def person_labels_it(episode: Episode) -> None:
        if episode.id == ids[1]:
            human(ids[1], 1.0, store=store, labeled_by="bob")

    report = batch(
        store=store, agents=agents, evaluator=FixedEvaluator({}, during=person_labels_it), agent_id=AGENT
    )
    assert (report.labeled, report.skipped) == (2, 1)
    assert "changed while it was being scored" in report.failures[0].reason
    assert store.get(ids[1]).label.labeled_by == "bob"  # type: ignore[union-attr]


def test_one_failing_episode_is_skipped_and_reported(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 4)
    report = batch(store=store, agents=agents, evaluator=FixedEvaluator({}, explode={ids[2]}), agent_id=AGENT)
    assert (report.labeled, report.failed) == (3, 1)
    failure = report.failures[0]
    assert (failure.episode_id, failure.kind) == (ids[2], "failed")
    assert failure.reason == f"RuntimeError: cannot score {ids[2]}"
    assert not store.get(ids[2]).labeled


def test_a_repeated_verdict_makes_one_label_until_the_clock_moves_a_second(
    agents: YamlAgentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluator returning the same verdict object gets the same label for every episode while
    ``labeled_at`` stands; it moves on at a chunk's end once a second has passed."""
    verdict = Evaluation(score=0.8, reason="same", evaluator="same", evaluator_version="1")

    class Repeating(FixedEvaluator):
        def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
            return verdict

    ticks = iter([T0, T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=1.5), T0 + timedelta(seconds=2)])
    monkeypatch.setattr("lightning.services.labeling.utcnow", lambda: next(ticks))
    store = InMemoryEpisodeStore()
    ids = fill(store, 6)
    policy = LabelingPolicy(chunk_size=2, window=1)
    report = batch(store=store, agents=agents, evaluator=Repeating({}), agent_id=AGENT, policy=policy)
    assert (report.labeled, report.accepted) == (6, 6)
    labels = [store.get(episode_id).labels for episode_id in ids]
    assert all(len(history) == 1 for history in labels)
    # chunk 1 at T0; chunk 2 still T0 (0.5 s later); chunk 3 at T0 + 1.5 s (a second had passed)
    assert [history[0].labeled_at for history in labels] == [T0] * 4 + [T0 + timedelta(seconds=1.5)] * 2
    assert len({history[0] for history in labels[:4]}) == 1  # equal values, labeled_at included
    assert {history[0].model_copy(update={"labeled_at": T0}) for history in labels} == {labels[0][0]}


def test_an_out_of_range_score_is_a_failure_not_a_crash(agents: YamlAgentRegistry) -> None:
    class Broken(FixedEvaluator):
        def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
            return Evaluation.model_construct(
                score=float("nan"), reason="?", evaluator="b", evaluator_version="1"
            )

    store = InMemoryEpisodeStore()
    fill(store, 2)
    report = batch(store=store, agents=agents, evaluator=Broken({}), agent_id=AGENT)
    assert (report.labeled, report.failed) == (0, 2)
    assert "finite" in report.failures[0].reason


def test_a_dead_evaluator_stops_the_batch_early(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 10)
    evaluator = FixedEvaluator({}, explode=set(ids))
    report = batch(
        store=store,
        agents=agents,
        evaluator=evaluator,
        agent_id=AGENT,
        policy=LabelingPolicy(max_consecutive_failures=3, window=1),
    )
    assert report.failed == 3
    assert len(evaluator.seen) == 3
    assert report.stopped is not None
    assert "3 failures in a row" in report.stopped


def test_limit_takes_the_oldest_and_chunks_are_written(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 12)
    progress: list[int] = []
    report = batch(
        store=store,
        agents=agents,
        evaluator=FixedEvaluator({}),
        agent_id=AGENT,
        limit=7,
        policy=LabelingPolicy(chunk_size=3),
        on_progress=progress.append,
    )
    assert report.labeled == 7
    assert sum(progress) == 7
    labeled = sorted(e.id for e in store.query(EpisodeQuery(labeled=True)))
    assert labeled == ids[:7]
    assert labels_needed(store, agent_id=AGENT) == 5
    assert labels_needed(store, agent_id=AGENT, relabel=True) == 12


def test_only_the_requested_agent_is_labeled(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    fill(store, 2)
    fill(store, 2, agent_id="approval-agent")
    batch(store=store, agents=agents, evaluator=FixedEvaluator({}), agent_id="approval-agent")
    assert store.count(EpisodeQuery(agent_id=AGENT, labeled=False)) == 2
    assert store.count(EpisodeQuery(agent_id="approval-agent", labeled=False)) == 0


def test_unknown_agent_lists_the_registered_ones(agents: YamlAgentRegistry) -> None:
    with pytest.raises(NotFound, match="registered agents: approval-agent, autonomous-agent"):
        batch(store=InMemoryEpisodeStore(), agents=agents, evaluator=FixedEvaluator({}), agent_id="x")


@pytest.mark.parametrize("bad", [float("nan"), 1.5, -0.2])
def test_min_score_is_validated(bad: float) -> None:
    with pytest.raises(InvalidInput, match="min-score"):
        LabelingPolicy(min_score=bad)


def test_limit_must_be_positive(agents: YamlAgentRegistry) -> None:
    with pytest.raises(InvalidInput, match="--limit"):
        batch(
            store=InMemoryEpisodeStore(), agents=agents, evaluator=FixedEvaluator({}), agent_id=AGENT, limit=0
        )


# --- label_new_episodes (the loop step) ---------------------------------------------------------
def test_loop_step_labels_only_unlabeled_and_ignores_its_own_writes(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    fill(store, 3)
    human(f"{AGENT}-001", 0.2, store=store)
    batch = store.changes_since(0)
    evaluator = RubricEvaluator()
    report = new_episodes(batch.episodes, store=store, agents=agents, evaluator=evaluator)
    assert report.labeled == 2
    assert report.selected == 2
    # the writes come back through the change feed; feeding them again does nothing
    again = new_episodes(
        store.changes_since(batch.cursor).episodes, store=store, agents=agents, evaluator=evaluator
    )
    assert (again.selected, again.labeled) == (0, 0)
    assert store.get(f"{AGENT}-001").reward == 0.2


def test_loop_step_isolates_unknown_agents_and_failures(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 3)
    store.add([make_episode("stray", agent_id="ghost-agent")])
    report = new_episodes(
        store.changes_since(0).episodes,
        store=store,
        agents=agents,
        evaluator=FixedEvaluator({}, explode={ids[0]}),
        policy=LabelingPolicy(min_score=0.5),
    )
    assert (report.selected, report.labeled, report.failed, report.accepted) == (4, 2, 2, 2)
    reasons = {f.episode_id: f.reason for f in report.failures}
    assert "not registered" in reasons["stray"]
    assert "cannot score" in reasons[ids[0]]


def test_loop_step_rereads_feed_documents_without_etag(agents: YamlAgentRegistry) -> None:
    """A Cosmos document whose etag was lost must not overwrite a label written since."""
    store = InMemoryEpisodeStore()
    fill(store, 2)
    snapshot = [e.model_copy(update={"etag": None}) for e in store.changes_since(0).episodes]
    human(f"{AGENT}-000", 0.1, store=store)  # after the snapshot
    report = new_episodes(snapshot, store=store, agents=agents, evaluator=FixedEvaluator({}))
    assert report.labeled == 1
    assert store.get(f"{AGENT}-000").label.source == "human"  # type: ignore[union-attr]
    deleted = make_episode("gone")
    assert new_episodes([deleted], store=store, agents=agents, evaluator=FixedEvaluator({})).selected == 0


def test_loop_step_raises_when_the_evaluator_is_down_so_the_batch_is_retried(
    agents: YamlAgentRegistry,
) -> None:
    from lightning.domain.errors import TransientProviderError

    store = InMemoryEpisodeStore()
    ids = fill(store, 6)
    evaluator = FixedEvaluator({}, explode=set(ids[1:]))
    with pytest.raises(TransientProviderError, match="will be retried"):
        new_episodes(
            store.changes_since(0).episodes,
            store=store,
            agents=agents,
            evaluator=evaluator,
            policy=LabelingPolicy(max_consecutive_failures=3, window=1),
        )
    assert store.get(ids[0]).labeled  # what it did label before stopping is kept
    assert len(evaluator.seen) == 4


class PooledEvaluator(FixedEvaluator):
    """Scores a window from a thread pool, as the judge does; records which threads called it."""

    def __init__(self, scores: dict[str, float], *, workers: int, **kwargs: Any) -> None:
        super().__init__(scores, **kwargs)
        self.workers = workers
        self.threads: set[str] = set()

    def evaluate(self, episode: Episode, agent: AgentDefinition) -> Evaluation:
        import threading
        import time

        self.threads.add(threading.current_thread().name)
        time.sleep(0.002)  # calls overlap; the result must not depend on the order they finish in
        return super().evaluate(episode, agent)

    def evaluate_many(self, items: Sequence[tuple[Episode, AgentDefinition]]) -> list[Evaluation | Exception]:
        def one(item: tuple[Episode, AgentDefinition]) -> Evaluation | Exception:
            try:
                return self.evaluate(*item)
            except Exception as exc:
                return exc

        if self.workers == 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(one, items))


def test_an_evaluator_scoring_in_parallel_gives_the_same_result_as_one_by_one(
    agents: YamlAgentRegistry,
) -> None:
    outcomes = []
    for workers in (1, 4):
        store = InMemoryEpisodeStore()
        ids = fill(store, 23)
        human(ids[5], 0.2, store=store)
        evaluator = PooledEvaluator(
            {i: (k % 10) / 10 for k, i in enumerate(ids)}, workers=workers, explode={ids[7], ids[8]}
        )
        report = batch(
            store=store,
            agents=agents,
            evaluator=evaluator,
            agent_id=AGENT,
            relabel=True,
            policy=LabelingPolicy(min_score=0.5, chunk_size=5, window=8),
        )
        outcomes.append((report.summary(), sorted((e.id, e.reward) for e in store.all())))
        assert (len(evaluator.threads) > 1) == (workers > 1)
    (sequential, seq_rewards), (parallel, par_rewards) = outcomes
    assert seq_rewards == par_rewards
    assert sequential["failures"] == parallel["failures"]  # same episodes, same order
    for key in ("selected", "labeled", "skipped", "failed", "accepted", "average_score"):
        assert sequential[key] == parallel[key]


def test_parallel_labeling_stops_on_repeated_failures(agents: YamlAgentRegistry) -> None:
    store = InMemoryEpisodeStore()
    ids = fill(store, 40)
    evaluator = PooledEvaluator({}, workers=4, explode=set(ids))
    report = batch(
        store=store,
        agents=agents,
        evaluator=evaluator,
        agent_id=AGENT,
        policy=LabelingPolicy(max_consecutive_failures=5, window=8),
    )
    assert report.stopped is not None
    assert report.failed == 5
    assert len(evaluator.seen) == 8  # one window was scored; nothing after the stop
    assert not any(e.labeled for e in store.all())


def test_a_configuration_error_stops_the_batch_at_once(agents: YamlAgentRegistry) -> None:
    class NoCredential(FixedEvaluator):
        def evaluate_many(
            self, items: Sequence[tuple[Episode, AgentDefinition]]
        ) -> list[Evaluation | Exception]:
            raise ConfigurationError("no Entra ID token for the judge")

    store = InMemoryEpisodeStore()
    fill(store, 3)
    with pytest.raises(ConfigurationError, match="no Entra ID token"):
        batch(store=store, agents=agents, evaluator=NoCredential({}), agent_id=AGENT)
    assert not any(e.labeled for e in store.all())

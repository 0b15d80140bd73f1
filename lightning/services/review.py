"""The review queue: the episodes a person should label next, where the judge is most likely wrong.

Called by ``review-queue``, ``GET /api/review-queue`` and the console. Never lists an episode a person
has labeled. Each item says ``why`` it was queued, in words a reviewer can check.

How it ranks (cheap enough for the first page on millions of episodes):

1. candidates: the agent's not-human-labeled episodes with the highest stored
   ``review_priority(label)`` (``lightning/domain/episode.py``; an index serves them), at most
   ``limit × candidates_per_item``;
2. each candidate is scored from every signal there is: the judge's score near the accept line (where
   its decision flips), the judge's expected tool differing from the agent's, no rubric intent matched
   (the judge could not tell which tool fits), evaluator flags (arguments it could not check…), the
   judge's accept decision contradicting its own tool verdict, a tool or a phrasing rarely seen in the
   agent's recent traffic, and episodes never scored at all;
3. spread: items are picked greedily by score, each pick lowering the score of candidates with the
   same (tool, reason) and the same phrasing, so one page covers many tools and phrasings instead of
   twenty copies of one mistake.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lightning.domain.episode import Episode
from lightning.domain.errors import InvalidInput
from lightning.ports.agents import AgentRegistry
from lightning.ports.episodes import EpisodeQuery, EpisodeStore

_WORD = re.compile(r"[a-z0-9]+")
MAX_LIMIT = 500


class ReviewPolicy(BaseModel):
    """The queue's knobs; ``min_reward`` is the agent's accept line (DATASET_MIN_REWARD)."""

    model_config = ConfigDict(frozen=True)

    min_reward: float = Field(default=0.7, ge=0, le=1)
    band: float = Field(default=0.2, gt=0, le=1, description="Scores this close to the line are uncertain.")
    candidates_per_item: int = Field(default=10, ge=1)
    max_candidates: int = Field(default=5000, ge=1)
    sample: int = Field(default=2000, ge=0, description="Recent episodes read to tell what is rare.")
    rare_tool_share: float = Field(default=0.05, ge=0, le=1)
    spread: float = Field(default=0.7, gt=0, le=1, description="Score factor per earlier pick like it.")


class ReviewRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_id: str = Field(min_length=1)
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    tool: str | None = Field(default=None, description="Only episodes where the agent called this tool.")


class ReviewItem(BaseModel):
    """One episode to review, and why."""

    id: str
    agent_id: str
    query: str
    tool: str | None = Field(description="The tool the agent called.")
    arguments: dict[str, Any] = Field(default_factory=dict)
    judge_score: float | None = Field(description="The judge's reward (None: not scored yet).")
    judge_expected_tool: str | None = Field(default=None, description="The tool the judge expected.")
    judge_reason: str | None = None
    model_version: str | None = None
    timestamp: datetime
    priority: float = Field(description="How informative a review is expected to be (higher first).")
    why: list[str] = Field(description="Why it was queued, most important first.")


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if len(word) > 2}


class _Rarity:
    """What the agent's recent traffic looks like: tool shares and how common each word is."""

    def __init__(self, episodes: list[Episode]) -> None:
        self.total = max(len(episodes), 1)
        self.tools: Counter[str] = Counter(e.action.tool or "" for e in episodes)
        self.words: Counter[str] = Counter()
        for episode in episodes:
            self.words.update(_words(episode.state.query))

    def tool_share(self, tool: str | None) -> float:
        return self.tools.get(tool or "", 0) / self.total

    def rare_words(self, query: str) -> list[str]:
        return sorted(word for word in _words(query) if self.words.get(word, 0) <= 1)


def _signals(episode: Episode, rarity: _Rarity, policy: ReviewPolicy) -> tuple[float, list[str]]:
    """(score, reasons) of one candidate."""
    label = episode.auto_label
    tool = episode.action.tool
    reasons: list[tuple[float, str]] = []
    if label is None:
        reasons.append((0.3, "not scored by the judge yet"))
    else:
        distance = abs(label.score - policy.min_reward)
        if distance <= policy.band:
            reasons.append(
                (
                    0.35 * (1 - distance / policy.band) + 0.05,
                    f"judge score {label.score:.2f} is near the accept line {policy.min_reward:g}",
                )
            )
        if label.expected_tool is not None and label.expected_tool != tool:
            reasons.append(
                (0.3, f"the judge expected {label.expected_tool}, the agent called {tool or 'no tool'}")
            )
        if label.expected_tool is None and tool is not None:
            reasons.append((0.3, "the judge could not tell which tool fits (no rubric intent matched)"))
        accepts = label.score >= policy.min_reward
        if accepts and label.tool_correct is False:
            reasons.append((0.2, "the judge accepts the answer although it calls the tool wrong"))
        if not accepts and label.tool_correct is True:
            reasons.append((0.15, "the judge rejects the answer although the tool is right"))
        for flag in label.flags:
            reasons.append((0.1, f"judge flag: {flag.replace('_', ' ')}"))
    share = rarity.tool_share(tool)
    if tool is not None and share < policy.rare_tool_share:
        reasons.append((0.15, f"{tool} is rare ({share:.0%} of recent episodes)"))
    rare = rarity.rare_words(episode.state.query)
    if rare:
        reasons.append((0.1 + 0.05 * min(len(rare), 3), f"rare phrasing ({', '.join(rare[:3])})"))
    reasons.sort(key=lambda item: -item[0])
    return round(sum(weight for weight, _ in reasons), 4), [text for _, text in reasons]


def _item(episode: Episode, priority: float, why: list[str]) -> ReviewItem:
    label = episode.auto_label
    return ReviewItem(
        id=episode.id,
        agent_id=episode.agent_id,
        query=episode.state.query,
        tool=episode.action.tool,
        arguments=dict(episode.action.arguments),
        judge_score=label.score if label is not None else None,
        judge_expected_tool=label.expected_tool if label is not None else None,
        judge_reason=label.reason if label is not None else None,
        model_version=episode.model_version,
        timestamp=episode.timestamp,
        priority=priority,
        why=why,
    )


def review_queue(
    request: ReviewRequest, *, episodes: EpisodeStore, agents: AgentRegistry, policy: ReviewPolicy
) -> list[ReviewItem]:
    """The next ``request.limit`` episodes to review, most informative first (see the module docstring)."""
    agent = agents.get(request.agent_id)
    if request.tool is not None and agent.tool(request.tool) is None:
        raise InvalidInput(
            f"--tool {request.tool!r} is not one of {agent.id}'s tools ({', '.join(agent.tool_names)})",
            field="tool",
        )
    wanted = min(policy.max_candidates, request.limit * policy.candidates_per_item)
    base = {"agent_id": agent.id, "human_labeled": False}
    candidates: list[Episode] = []
    for episode in episodes.query(EpisodeQuery(**base, order="review")):
        if episode.human_labeled:
            continue  # labeled by a person after the query began
        if request.tool is not None and episode.action.tool != request.tool:
            continue
        candidates.append(episode)
        if len(candidates) >= wanted:
            break
    recent = (
        list(episodes.query(EpisodeQuery(agent_id=agent.id, limit=policy.sample))) if policy.sample else []
    )
    rarity = _Rarity(recent or candidates)
    # Each candidate's spread keys are computed once: the greedy pick below looks at every remaining
    # candidate for every pick (limit × candidates), so it must only look things up.
    scored: list[tuple[Episode, float, list[str], tuple[str, str], frozenset[str]]] = []
    for episode in candidates:
        score, why = _signals(episode, rarity, policy)
        kind = (episode.action.tool or "", why[0] if why else "")
        scored.append((episode, score, why, kind, frozenset(_words(episode.state.query))))
    picked: list[ReviewItem] = []
    like: Counter[tuple[str, str]] = Counter()
    phrasing: Counter[frozenset[str]] = Counter()
    remaining = scored

    def adjusted(entry: tuple[Episode, float, list[str], tuple[str, str], frozenset[str]]) -> float:
        _episode, score, _why, kind, words = entry
        return score * policy.spread ** (like[kind] + phrasing[words])

    while remaining and len(picked) < request.limit:
        best = max(
            range(len(remaining)),
            key=lambda i: (adjusted(remaining[i]), remaining[i][0].timestamp, remaining[i][0].id),
        )
        entry = remaining.pop(best)
        episode, _score, why, kind, words = entry
        if not why:
            break  # nothing left that a review would teach anything
        picked.append(_item(episode, round(adjusted(entry), 4), why))
        like[kind] += 1
        phrasing[words] += 1
    return picked

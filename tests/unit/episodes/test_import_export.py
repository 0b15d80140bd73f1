"""Import (validated line by line, idempotent) and export (streaming JSONL) of episodes."""

from __future__ import annotations

import io
import json

import pytest

from lightning.domain.errors import InvalidInput
from lightning.services.episodes import episode_query, export_episodes, import_episodes, parse_line
from tests.fakes.episodes import InMemoryEpisodeStore, make_episode


def lines_of(*docs: object) -> list[str]:
    return [d if isinstance(d, str) else json.dumps(d) for d in docs]


GOOD_A = make_episode("a").to_document()
GOOD_B = make_episode("b", query="Predict next month's sales forecast").to_document()


def test_valid_lines_are_imported_and_bad_ones_reported_with_numbers() -> None:
    store = InMemoryEpisodeStore()
    lines = lines_of(
        GOOD_A, "{not json", "", {"id": "c", "agent_id": "x"}, [1, 2], {**GOOD_B, "reward": 7}, GOOD_B
    )
    report = import_episodes(lambda: lines, store=store)
    assert (report.lines, report.valid, report.imported, report.already_present) == (6, 2, 2, 0)
    rejected = {r.line: r.reason for r in report.rejected}
    assert sorted(rejected) == [2, 4, 5, 6]
    assert rejected[2].startswith("not valid JSON")
    assert "state: Field required" in rejected[4]
    assert "expected a JSON object, got list" in rejected[5]
    assert "reward: reward must be between 0 and 1, got 7" in rejected[6]
    assert not report.aborted


def test_reimporting_creates_no_duplicates() -> None:
    store = InMemoryEpisodeStore()
    lines = lines_of(GOOD_A, GOOD_B, GOOD_A)
    first = import_episodes(lambda: lines, store=store)
    second = import_episodes(lambda: lines, store=store)
    assert (first.imported, first.already_present) == (2, 1)
    assert (second.imported, second.already_present) == (0, 3)
    assert len(store) == 2


def test_strict_imports_nothing_when_any_line_is_bad() -> None:
    store = InMemoryEpisodeStore()
    lines = lines_of(GOOD_A, "nope", GOOD_B)
    report = import_episodes(lambda: lines, store=store, strict=True)
    assert report.aborted
    assert [r.line for r in report.rejected] == [2]
    assert report.imported == 0
    assert len(store) == 0


def test_strict_imports_everything_when_all_lines_are_good() -> None:
    store = InMemoryEpisodeStore()
    report = import_episodes(lambda: lines_of(GOOD_A, GOOD_B), store=store, strict=True, batch_size=1)
    assert (report.imported, report.lines, report.aborted) == (2, 2, False)


def test_export_round_trips_through_import() -> None:
    source = InMemoryEpisodeStore([make_episode("a"), make_episode("b", agent_id="approval-agent")])
    buffer = io.StringIO()
    assert export_episodes(source, episode_query(), write=buffer.write) == 2
    target = InMemoryEpisodeStore()
    import_episodes(lambda: buffer.getvalue().splitlines(), store=target)
    assert sorted(e.model_dump_json() for e in target.all()) == sorted(
        e.model_dump_json() for e in source.all()
    )


def test_a_foreign_etag_in_a_line_is_ignored() -> None:
    assert parse_line(json.dumps({**GOOD_A, "etag": "x", "_ts": 1})).etag is None


def test_episode_query_rules() -> None:
    with pytest.raises(InvalidInput, match="exclude each other"):
        episode_query(unlabeled_only=True, labeled_only=True)
    with pytest.raises(InvalidInput, match="--limit"):
        episode_query(limit=0)
    assert episode_query(unlabeled_only=True).labeled is False
    assert episode_query(labeled_only=True).labeled is True

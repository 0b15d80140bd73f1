"""The GoldenStore contract: the in-memory fake, SQLite and Cosmos behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lightning.bootstrap import cosmos_account
from lightning.domain.errors import NotFound
from lightning.domain.golden import GoldenExample, golden_id
from lightning.ports.golden import GoldenStore

AGENT = "autonomous-agent"
OTHER = "approval-agent"
T0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GoldenStore]:
    if request.param == "memory":
        from tests.fakes.golden import InMemoryGoldenStore

        yield InMemoryGoldenStore()
        return
    if request.param == "cosmos":
        from lightning.adapters.cosmos.golden import CosmosGoldenStore

        yield CosmosGoldenStore.in_account(cosmos_account(request.getfixturevalue("cosmos_settings")()))
        return
    from lightning.adapters.sqlite.db import SqliteDatabase
    from lightning.adapters.sqlite.golden import SqliteGoldenStore

    db = SqliteDatabase(tmp_path / "golden.db")
    yield SqliteGoldenStore(db)
    db.close()


def example(
    query: str,
    tool: str = "analyze_churn",
    *,
    agent: str = AGENT,
    at: int = 0,
    **fields: object,
) -> GoldenExample:
    return GoldenExample.of(
        agent_id=agent,
        query=query,
        expected_tool=tool,
        expected_arguments=fields.pop("expected_arguments", {"period": "Q4 2025"}),
        created_at=T0 + timedelta(seconds=at),
        **fields,
    )


def test_put_then_get_round_trips_every_field(golden: GoldenStore) -> None:
    original = example(
        "Analyze customer churn for Q4 2025",
        context={"user": "analyst@contoso.com", "nested": {"list": [1, 2, {"x": None}]}},
        expected_arguments={"period": "Q4 2025", "segments": ["smb", "enterprise"], "n": 3},
        source="correction",
        episode_id="episode-abc123",
        created_by="alice",
    )
    assert golden.put([original]) == 1
    got = golden.get(AGENT, original.id)
    assert got.model_dump() == original.model_dump()
    assert got.etag


def test_put_replaces_by_id_the_latest_answer_wins(golden: GoldenStore) -> None:
    golden.put([example("Forecast sales for the next 6 months", "sales_report", at=0)])
    first = golden.get(AGENT, golden_id(AGENT, "Forecast sales for the next 6 months"))
    again = example(
        "forecast sales for the next 6 months!",
        "sales_forecast",
        at=5,
        expected_arguments={"horizon_months": 6},
    )
    assert again.id == first.id  # the same request, normalized
    assert golden.put([again]) == 1
    assert golden.count(AGENT) == 1
    got = golden.get(AGENT, first.id)
    assert (got.expected_tool, got.expected_arguments) == ("sales_forecast", {"horizon_months": 6})
    assert got.query == "forecast sales for the next 6 months!"
    assert got.etag != first.etag


def test_the_same_id_twice_in_one_put_keeps_the_last(golden: GoldenStore) -> None:
    written = golden.put(
        [example("Top 5 products", "top_products", at=0), example("top 5 products", "sales_report", at=1)]
    )
    assert written == 1
    assert golden.count(AGENT) == 1
    assert golden.list(AGENT)[0].expected_tool == "sales_report"


def test_list_is_oldest_first_then_by_id_with_a_limit(golden: GoldenStore) -> None:
    queries = [f"Analyze customer churn for Q{q} 202{y}" for y in range(4) for q in range(1, 5)]
    examples = [example(q, at=i // 2) for i, q in enumerate(queries)]  # pairs share a created_at
    golden.put(list(reversed(examples)))
    expected = [e.id for e in sorted(examples, key=lambda e: (e.created_at, e.id))]
    assert [e.id for e in golden.list(AGENT)] == expected
    assert [e.id for e in golden.list(AGENT, limit=3)] == expected[:3]
    assert golden.count(AGENT) == len(queries)


def test_list_orders_instants_whatever_their_timezone(golden: GoldenStore) -> None:
    cet = timezone(timedelta(hours=1))
    later = example("Show me high risk customer segments", "customer_segments", at=30)
    earlier = example("Top 10 products by revenue", "top_products").model_copy(
        update={"created_at": datetime(2026, 2, 7, 11, 0, 10, tzinfo=cet)}  # = 10:00:10 UTC
    )
    golden.put([later, earlier])
    assert [e.id for e in golden.list(AGENT)] == [earlier.id, later.id]


def test_agents_are_kept_apart(golden: GoldenStore) -> None:
    golden.put(
        [example("Top 5 products", "top_products"), example("Top 5 products", "top_products", agent=OTHER)]
    )
    golden.put([example("Sales report for the west region", "sales_report", agent=OTHER)])
    assert golden.count(AGENT) == 1
    assert golden.count(OTHER) == 2
    assert golden.count("nobody") == 0
    assert golden.list("nobody") == []
    assert {e.agent_id for e in golden.list(OTHER)} == {OTHER}
    mine = golden.list(AGENT)[0]
    with pytest.raises(NotFound):
        golden.get("nobody", mine.id)


def test_get_and_delete_of_a_missing_example_are_not_found(golden: GoldenStore) -> None:
    with pytest.raises(NotFound) as err:
        golden.get(AGENT, "golden-missing")
    assert err.value.ident == "golden-missing"
    with pytest.raises(NotFound):
        golden.delete(AGENT, "golden-missing")


def test_delete_removes_one_example(golden: GoldenStore) -> None:
    keep, drop = example("Top 5 products", "top_products"), example("Churn for Q1 2026", at=1)
    golden.put([keep, drop])
    golden.delete(AGENT, drop.id)
    assert [e.id for e in golden.list(AGENT)] == [keep.id]
    assert golden.count(AGENT) == 1
    with pytest.raises(NotFound):
        golden.get(AGENT, drop.id)
    with pytest.raises(NotFound):
        golden.delete(AGENT, drop.id)  # twice: already gone
    with pytest.raises(NotFound):
        golden.delete(OTHER, keep.id)  # another agent's partition does not hold it
    assert golden.count(AGENT) == 1


def test_put_of_nothing_writes_nothing(golden: GoldenStore) -> None:
    assert golden.put([]) == 0
    assert golden.count(AGENT) == 0


def test_text_survives_exactly(golden: GoldenStore) -> None:
    tricky = 'Ünïcode “quotes” \\ backslash "json" \n newline \u2028 and emoji 📈'
    golden.put([example(tricky, expected_arguments={"note": tricky}, context={"note": tricky})])
    got = golden.list(AGENT)[0]
    assert got.query == tricky
    assert got.expected_arguments == {"note": tricky}
    assert got.context == {"note": tricky}
